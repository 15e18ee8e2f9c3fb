"""Policy changes are money changes: a facility's approval threshold, its window, the deposit
fee rule and the deposit limits change only through a ``policy_change`` request that a second
facility administrator of the facility (or a superuser) approves, within bounds the model
writes down, with the old and new values in the audit trail."""

import pytest
from auditlog.models import LogEntry
from django.db import IntegrityError, transaction

from accounts.roles import FACILITY_ADMIN
from commissary import errors
from facilities.models import Facility
from ledger import services
from ledger.models import StaffRequest
from tests.admin.conftest import staff_with_role
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

State = StaffRequest.State


@pytest.fixture
def second_admin(site_a):
    return staff_with_role(FACILITY_ADMIN, site_a.facility)


def ask(site, who="facility_admin", **values):
    return services.request_policy_change(
        facility_id=site.facility.pk,
        staff_id=site.staff[who].pk,
        reason="New contract with the bank",
        values=values,
    )


def facility(site) -> Facility:
    return Facility.objects.get(pk=site.facility.pk)


def test_a_policy_change_waits_and_changes_nothing_until_a_second_administrator_approves(
    site_a, second_admin
):
    staff_request = ask(site_a, adjustment_approval_threshold_fen=30_000, deposit_fee_rate_bp=50)
    assert staff_request.state == State.REQUESTED and staff_request.inmate is None
    assert staff_request.policy_changes == {
        "adjustment_approval_threshold_fen": {"from": 50_000, "to": 30_000},
        "deposit_fee_rate_bp": {"from": 0, "to": 50},
    }
    assert facility(site_a).adjustment_approval_threshold_fen == 50_000

    services.approve_request(staff_request_id=staff_request.pk, approver_id=second_admin.pk)

    staff_request.refresh_from_db()
    assert staff_request.state == State.EXECUTED and staff_request.decided_by == second_admin
    saved = facility(site_a)
    assert saved.adjustment_approval_threshold_fen == 30_000
    assert saved.deposit_fee_rate_bp == 50
    entry = LogEntry.objects.get_for_object(saved).filter(action=LogEntry.Action.UPDATE).get()
    assert [str(value) for value in entry.changes_dict["adjustment_approval_threshold_fen"]] == [
        "50000",
        "30000",
    ]


def test_the_requester_a_trust_officer_or_another_facilitys_admin_cannot_approve(site_a, site_b):
    staff_request = ask(site_a, max_deposits_per_month=3)
    for approver in (
        site_a.staff["facility_admin"],
        site_a.staff["trust_officer_2"],
        site_b.staff["facility_admin"],
    ):
        with pytest.raises(errors.NotPermitted):
            services.approve_request(staff_request_id=staff_request.pk, approver_id=approver.pk)
    assert facility(site_a).max_deposits_per_month is None


def test_a_superuser_may_approve(site_a):
    staff_request = ask(site_a, max_deposit_fen=20_000)
    superuser = StaffFactory(is_superuser=True)
    services.approve_request(staff_request_id=staff_request.pk, approver_id=superuser.pk)
    assert facility(site_a).max_deposit_fen == 20_000


def test_only_a_facility_administrator_may_ask(site_a):
    with pytest.raises(errors.NotPermitted):
        ask(site_a, who="trust_officer", deposit_fee_rate_bp=10)
    assert not StaffRequest.objects.exists()


@pytest.mark.parametrize(
    "values",
    [
        {"deposit_fee_rate_bp": 10_000},  # 100%: over the operator's 10%
        {"deposit_fee_rate_bp": 1_001},
        {"adjustment_approval_threshold_fen": 99_999_900},  # over the balance cap
        {"deposit_fee_fixed_fen": 1_000_000},
        {"approval_window_hours": 1_000},
    ],
)
def test_values_outside_the_bounds_are_refused_when_asked(site_a, values):
    with pytest.raises(errors.InvalidPolicy):
        ask(site_a, **values)
    assert not StaffRequest.objects.exists()


def test_the_operator_setting_sets_the_largest_fee_rate(site_a, settings):
    settings.DEPOSIT_FEE_MAX_RATE_BP = 200
    with pytest.raises(errors.InvalidPolicy, match="200"):
        ask(site_a, deposit_fee_rate_bp=300)


def test_the_database_refuses_a_threshold_above_the_balance_cap(site_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        Facility.objects.filter(pk=site_a.facility.pk).update(
            adjustment_approval_threshold_fen=site_a.facility.balance_cap_fen + 1
        )


def test_a_stale_request_is_refused_at_approval(site_a, second_admin):
    first = ask(site_a, max_deposits_per_month=3)
    second = ask(site_a, max_deposits_per_month=5)
    services.approve_request(staff_request_id=first.pk, approver_id=second_admin.pk)
    with pytest.raises(errors.InvalidPolicy):
        services.approve_request(staff_request_id=second.pk, approver_id=second_admin.pk)
    assert facility(site_a).max_deposits_per_month == 3


def test_a_lower_balance_cap_brings_the_threshold_down_with_it(site_a):
    services.change_facility_caps(
        facility_id=site_a.facility.pk, monthly_cap_fen=100_000, balance_cap_fen=40_000
    )
    assert facility(site_a).adjustment_approval_threshold_fen == 40_000


def test_the_facility_form_files_a_request_instead_of_saving_the_policy(client, site_a):
    client.force_login(site_a.staff["facility_admin"])
    url = f"/admin/facilities/facility/{site_a.facility.pk}/change/"
    page = client.get(url)
    form = page.context["adminform"].form
    data = {
        name: form[name].field.prepare_value(form[name].value())
        for name in form.fields
        if not form.fields[name].disabled and form[name].value() not in (None, False)
    }
    data.update(
        {
            "name": "Renamed prison",
            "adjustment_approval_threshold": "999,999.00",
            "deposit_fee_rate_bp": "10000",
            "links_need_approval": "on",
        }
    )
    refused = client.post(url, data)
    assert refused.status_code == 200  # out of bounds: the form says so, nothing filed
    assert not StaffRequest.objects.exists()

    data.update({"adjustment_approval_threshold": "300.00", "deposit_fee_rate_bp": "100"})
    no_reason = client.post(url, data)
    assert no_reason.status_code == 200 and "Say why" in no_reason.content.decode()

    data["policy_change_reason"] = "The bank's new fee"
    filed = client.post(url, data)
    staff_request = StaffRequest.objects.get()
    assert filed.status_code == 302 and filed.url.endswith(f"/{staff_request.pk}/change/")
    saved = facility(site_a)
    assert saved.name == "Renamed prison"  # other settings are saved at once
    assert saved.adjustment_approval_threshold_fen == 50_000  # the policy is not
    assert saved.deposit_fee_rate_bp == 0
    assert staff_request.kind == StaffRequest.Kind.POLICY_CHANGE
    assert set(staff_request.policy_changes) == {
        "adjustment_approval_threshold_fen",
        "deposit_fee_rate_bp",
    }


def test_a_second_administrator_approves_on_the_request_page(client, site_a, second_admin):
    staff_request = ask(site_a, deposit_fee_rate_bp=100)
    client.force_login(second_admin)
    page = client.get(f"/admin/ledger/staffrequest/{staff_request.pk}/change/")
    assert "Approve and execute" in page.content.decode()
    assert "1.00%" in page.content.decode()
    client.post(f"/admin/ledger/staffrequest/{staff_request.pk}/decide/", {"decision": "approve"})
    assert facility(site_a).deposit_fee_rate_bp == 100
