"""What each role can and cannot see and do in the admin. A role that may only view never
changes anything; money moves only through trust officers' requests; schedules are changed by
superusers only."""

import pytest
from django.contrib.auth.models import Group, Permission
from django_celery_beat.models import PeriodicTask

from accounts.roles import ROLES, TRUST_OFFICER, sync_role_groups
from facilities.models import Inmate
from ledger.models import StaffRequest
from ledger.schedules import ensure_schedules
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db

RELEASE = "release_inmates"


def action_choices(client) -> str:
    return client.get("/admin/facilities/inmate/").content.decode()


def test_the_role_groups_exist_and_only_trust_officers_may_approve_money():
    approve = Permission.objects.get(codename="approve_money", content_type__app_label="ledger")
    holders = set(approve.group_set.values_list("name", flat=True))
    assert {role.group_name for role in ROLES} <= set(Group.objects.values_list("name", flat=True))
    assert holders == {TRUST_OFFICER.group_name}


def test_a_permission_granted_by_hand_is_taken_back_at_the_next_sync():
    auditor = Group.objects.get(name="Auditor")
    auditor.permissions.add(Permission.objects.get(codename="change_inmate"))
    sync_role_groups()
    assert not auditor.permissions.filter(codename="change_inmate").exists()
    assert auditor.permissions.filter(codename="view_transaction").exists()


def test_no_role_may_change_a_schedule():
    change_schedule = Permission.objects.get(
        codename="change_periodictask", content_type__app_label="django_celery_beat"
    )
    assert not change_schedule.group_set.exists()


def test_a_facility_administrator_neither_sees_nor_changes_the_schedules(client, site_a):
    ensure_schedules()
    nightly = PeriodicTask.objects.get(name="Nightly reconciliation")
    client.force_login(site_a.staff["facility_admin"])
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 403
    answer = client.post(
        f"/admin/django_celery_beat/periodictask/{nightly.pk}/change/", {"enabled": ""}
    )
    assert answer.status_code == 403
    nightly.refresh_from_db()
    assert nightly.enabled


@pytest.mark.parametrize("role", ("clerk", "auditor", "trust_officer"))
def test_roles_without_the_inmate_change_permission_cannot_release(client, site_a, role):
    deposit(site_a.inmate, 10_000)
    client.force_login(site_a.staff[role])
    assert RELEASE not in action_choices(client)
    client.post(
        "/admin/facilities/inmate/",
        {
            "action": RELEASE,
            "_selected_action": [site_a.inmate.pk],
            "confirm_count": "1",
            "request_key": "6f1d1c36-6c57-4d3e-8a53-0a6f0bd43b8e",
        },
    )
    site_a.inmate.refresh_from_db()
    assert site_a.inmate.status == Inmate.Status.ACTIVE


@pytest.mark.parametrize("role", ("clerk", "auditor"))
def test_view_only_roles_cannot_edit_an_inmate(client, site_a, role):
    client.force_login(site_a.staff[role])
    answer = client.post(
        f"/admin/facilities/inmate/{site_a.inmate.pk}/change/",
        {"surname": "Changed", "given_name": "", "housing_unit": ""},
    )
    assert answer.status_code == 403
    site_a.inmate.refresh_from_db()
    assert site_a.inmate.surname != "Changed"


def test_a_clerk_sees_no_money(client, site_a):
    client.force_login(site_a.staff["clerk"])
    for url in (
        "/admin/ledger/transaction/",
        "/admin/ledger/account/",
        "/admin/ledger/staffrequest/add/",
        "/admin/reports/dashboard/",
    ):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("role", ("facility_admin", "auditor", "clerk"))
def test_only_trust_officers_ask_for_money_actions(client, site_a, role):
    client.force_login(site_a.staff[role])
    answer = client.post(
        "/admin/ledger/staffrequest/add/",
        {
            "inmate": site_a.inmate.pk,
            "kind": "credit",
            "amount": "10.00",
            "reason": "x",
            "confirm": "1",
        },
    )
    assert answer.status_code == 403
    assert not StaffRequest.objects.exists()


def test_an_auditor_reads_the_journal_the_audit_trail_and_the_reports(client, site_a):
    deposit(site_a.inmate, 10_000)
    client.force_login(site_a.staff["auditor"])
    for url in (
        "/admin/ledger/transaction/",
        "/admin/auditlog/logentry/",
        "/admin/reports/dashboard/",
        f"/admin/reports/balances/?facility={site_a.facility.pk}",
    ):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("action", ("disable_tasks", "toggle_tasks", "run_tasks"))
def test_staff_who_only_view_schedules_cannot_switch_them_off_through_list_actions(
    client, site_a, action
):
    ensure_schedules()
    nightly = PeriodicTask.objects.get(name="Nightly reconciliation")
    client.force_login(site_a.staff["facility_admin"])
    listing = client.get("/admin/django_celery_beat/periodictask/").content.decode()
    assert 'value="disable_tasks"' not in listing
    client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": action, "_selected_action": [nightly.pk]},
    )
    nightly.refresh_from_db()
    assert nightly.enabled


def test_a_superuser_can_switch_a_schedule_off(client):
    from tests.factories import StaffFactory

    ensure_schedules()
    nightly = PeriodicTask.objects.get(name="Nightly reconciliation")
    client.force_login(StaffFactory(is_superuser=True))
    client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "_selected_action": [nightly.pk]},
    )
    nightly.refresh_from_db()
    assert not nightly.enabled
