"""The review queue in the admin: a security officer sees their facilities' held deposits,
oldest first, with the rules that fired; accept and reject ask first, then move the money
once; another facility's hold answers as a missing one does."""

import pytest

from accounts.roles import SECURITY_OFFICER, TRUST_OFFICER, assign_role
from ledger.models import Deposit
from monitoring.models import Hold, Rule
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

from .helpers import paid, rule_at

pytestmark = pytest.mark.django_db

QUEUE = "/admin/monitoring/hold/"


@pytest.fixture
def site():
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, SECURITY_OFFICER)
    rule_at(facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    return facility, inmate, officer


def test_the_queue_lists_holds_of_the_officers_facilities_only(client, site):
    facility, inmate, officer = site
    paid(client, inmate, 10_000)
    elsewhere = InmateFactory(facility=FacilityFactory())
    rule_at(elsewhere.facility, Rule.Kind.MONITORED_INMATE, inmate=elsewhere)
    paid(client, elsewhere, 20_000)
    client.force_login(officer)
    page = client.get(QUEUE)
    assert page.status_code == 200
    text = page.content.decode()
    assert "¥100.00" in text and "¥200.00" not in text
    assert "Monitored inmate (v1)" in text
    other = Hold.objects.get(inmate=elsewhere)
    assert client.get(f"{QUEUE}{other.pk}/change/").status_code == 404


def test_accept_asks_first_then_credits(client, site):
    _facility, inmate, officer = site
    payment = paid(client, inmate, 10_000)
    hold = Hold.objects.get()
    client.force_login(officer)
    asked = client.post(QUEUE, {"action": "accept_selected", "_selected_action": [hold.pk]})
    assert (
        asked.status_code == 200 and "Accept and credit these deposits?" in asked.content.decode()
    )
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.HELD
    done = client.post(
        QUEUE, {"action": "accept_selected", "_selected_action": [hold.pk], "confirmed": "yes"}
    )
    assert done.status_code == 302
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.CREDITED
    # The decision's audit entry names the officer and where the request came from (the
    # service keeps the request's own audit context rather than starting one without it).
    from auditlog.models import LogEntry

    decision = LogEntry.objects.filter(
        content_type__model="hold", object_pk=str(hold.pk), action=LogEntry.Action.UPDATE
    )
    assert [(entry.actor, entry.remote_addr) for entry in decision] == [(officer, "127.0.0.1")]


def test_reject_needs_a_reason_then_refunds(client, site):
    _facility, inmate, officer = site
    payment = paid(client, inmate, 10_000)
    hold = Hold.objects.get()
    client.force_login(officer)
    form = {"action": "reject_selected", "_selected_action": [hold.pk], "confirmed": "yes"}
    again = client.post(QUEUE, form)
    assert again.status_code == 200  # the form again: a reason is required
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.HELD
    done = client.post(QUEUE, {**form, "reasons": ["unidentified_source"]})
    assert done.status_code == 302
    hold.refresh_from_db()
    assert (hold.state, hold.reasons) == (Hold.State.REJECTED, ["unidentified_source"])
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.REFUNDED


def test_a_trust_officer_cannot_decide_holds(client, site):
    facility, inmate, _officer = site
    paid(client, inmate, 10_000)
    hold = Hold.objects.get()
    trust_officer = StaffFactory(facilities=[facility])
    assign_role(trust_officer, TRUST_OFFICER)
    client.force_login(trust_officer)
    assert client.get(QUEUE).status_code == 403
    client.post(
        QUEUE, {"action": "accept_selected", "_selected_action": [hold.pk], "confirmed": "yes"}
    )
    assert Deposit.objects.get(pk=hold.deposit_id).status == Deposit.Status.HELD


def test_the_family_sees_being_reviewed_without_the_rule(client, site):
    _facility, inmate, _officer = site
    from tests.payments.helpers import depositor

    family = depositor()
    payment = paid(client, inmate, 10_000, user=family)
    client.force_login(family)
    page = client.get(f"/family/deposits/{payment.deposit.reference}").content.decode()
    assert "Being reviewed" in page and "Monitored inmate" not in page


def test_a_security_officer_edits_rules_and_each_save_is_a_version(client, site):
    facility, _inmate, officer = site
    client.force_login(officer)
    answer = client.post(
        "/admin/monitoring/rule/add/",
        {
            "facility": facility.pk,
            "kind": Rule.Kind.AMOUNT_AT_LEAST,
            "amount_fen": "500.00",
            "is_active": "on",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    rule = Rule.objects.get(kind=Rule.Kind.AMOUNT_AT_LEAST)
    assert (rule.amount_fen, rule.version, rule.versions.count()) == (50_000, 1, 1)


def test_the_queue_reads_in_the_same_number_of_queries_however_many_holds(client, site):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _facility, inmate, officer = site
    paid(client, inmate, 10_000)
    client.force_login(officer)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(QUEUE).status_code == 200
        return len(captured)

    queries()  # the session's first request writes its stamps
    one = queries()
    for amount in (11_000, 12_000, 13_000):
        paid(client, inmate, amount)
    assert queries() == one, (one,)
