"""The audit trail records every admin change and every step of a money request with the
person who took it and the facility it concerns; auditors see their facilities' entries only;
failed sign-ins are recorded."""

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from ledger.models import StaffRequest

pytestmark = pytest.mark.django_db


def entries_for(model, pk):
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(model), object_pk=str(pk)
    ).order_by("timestamp", "pk")


def test_an_admin_edit_is_recorded_with_who_what_and_the_facility(client, site_a):
    editor = site_a.staff["facility_admin"]
    client.force_login(editor)
    client.post(
        f"/admin/facilities/inmate/{site_a.inmate.pk}/change/",
        {"surname": "Renamed", "given_name": site_a.inmate.given_name, "housing_unit": ""},
    )
    entry = entries_for(type(site_a.inmate), site_a.inmate.pk).last()
    assert entry.actor == editor and entry.action == LogEntry.Action.UPDATE
    assert entry.changes["surname"][1] == "Renamed"
    assert entry.additional_data["facility_id"] == site_a.facility.pk
    assert "pin_hash" not in entry.changes


def test_each_step_of_a_money_request_is_recorded_with_requester_and_approver(client, site_a):
    requester, approver = site_a.staff["trust_officer"], site_a.staff["trust_officer_2"]
    client.force_login(requester)
    client.post(
        "/admin/ledger/staffrequest/add/",
        {
            "inmate": site_a.inmate.pk,
            "kind": "credit",
            "amount": "10.00",
            "reason": "Wages",
            "confirm": "1",
        },
    )
    staff_request = StaffRequest.objects.get()
    client.force_login(approver)
    client.post(f"/admin/ledger/staffrequest/{staff_request.pk}/decide/", {"decision": "approve"})
    steps = list(entries_for(StaffRequest, staff_request.pk))
    assert steps[0].action == LogEntry.Action.CREATE and steps[0].actor == requester
    assert steps[0].changes["reason"][1] == "Wages"
    assert {entry.actor for entry in steps[1:]} == {approver}
    assert steps[-1].changes["state"][1] == "executed"
    assert all(entry.additional_data["facility_id"] == site_a.facility.pk for entry in steps)


def test_auditors_see_their_facility_s_entries_and_can_filter_by_person(client, site_a, site_b):
    for site in (site_a, site_b):
        client.force_login(site.staff["facility_admin"])
        client.post(
            f"/admin/facilities/inmate/{site.inmate.pk}/change/",
            {"surname": f"Audit{site.facility.code}", "given_name": "", "housing_unit": ""},
        )
    client.force_login(site_a.staff["auditor"])
    listed = client.get("/admin/auditlog/logentry/").context["cl"].result_list
    reprs = " ".join(entry.object_repr for entry in listed)
    assert site_a.inmate.inmate_number in reprs and site_b.inmate.inmate_number not in reprs
    by_person = (
        client.get("/admin/auditlog/logentry/", {"actor": site_a.staff["facility_admin"].pk})
        .context["cl"]
        .result_list
    )
    assert {entry.actor for entry in by_person} == {site_a.staff["facility_admin"]}
    b_entry = entries_for(type(site_b.inmate), site_b.inmate.pk).last()
    assert client.get(f"/admin/auditlog/logentry/{b_entry.pk}/change/").status_code == 404


def test_a_failed_admin_sign_in_is_recorded(client, site_a):
    client.post("/admin/login/", {"username": site_a.staff["clerk"].username, "password": "no"})
    failed = LogEntry.objects.filter(action=LogEntry.Action.ACCESS).get()
    assert failed.object_repr == site_a.staff["clerk"].username
    assert failed.remote_addr == "127.0.0.1"
    assert "no" not in str(failed.changes.values()).replace(site_a.staff["clerk"].username, "")
    client.force_login(site_a.staff["auditor"])
    listed = client.get(
        "/admin/auditlog/logentry/", {"action__exact": "3", "event": "failed sign-in"}
    ).context["cl"]
    assert [entry.pk for entry in listed.result_list] == [failed.pk]


def test_a_release_through_the_admin_is_recorded_with_the_person(client, site_a):
    from ledger.models import AccountEvent
    from tests.ledger.helpers import deposit

    deposit(site_a.inmate, 3_000)
    releaser = site_a.staff["facility_admin"]
    client.force_login(releaser)
    client.post(
        "/admin/facilities/inmate/",
        {
            "action": "release_inmates",
            "_selected_action": [site_a.inmate.pk],
            "confirm_count": "1",
            "request_key": "6f1d1c36-6c57-4d3e-8a53-0a6f0bd43b8e",
        },
    )
    closing = AccountEvent.objects.get(inmate=site_a.inmate, kind=AccountEvent.Kind.CLOSED)
    assert closing.created_by == releaser and closing.transaction.created_by == releaser
    logged = entries_for(AccountEvent, closing.pk).get()
    assert logged.actor == releaser
    status_change = entries_for(type(site_a.inmate), site_a.inmate.pk).last()
    assert status_change.actor == releaser and status_change.changes["status"][1] == "released"
