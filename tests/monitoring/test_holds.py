"""A deposit that fires a rule is paid but held: its room stays reserved under both caps,
nothing reaches the inmate; accept credits it once, reject refunds it once through the
provider outbox, and a hold nobody decides in time is refunded with the reason recorded."""

import datetime as dt

import pytest
from django.utils import timezone

from commissary import errors
from ledger import batch
from ledger import services as ledger
from ledger.models import Account, Deposit, MonthlyPeriod, Transaction
from monitoring import services
from monitoring.models import Hold, Rule
from payments.models import Payment, ProviderCall
from payments.services import queueing
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit as credited_deposit
from tests.ledger.helpers import key
from tests.payments.helpers import callback_body, post_callback

from .helpers import paid, rule_at, started

pytestmark = pytest.mark.django_db


@pytest.fixture
def inmate():
    return InmateFactory(facility=FacilityFactory())


@pytest.fixture
def officer(inmate):
    return StaffFactory(facilities=[inmate.facility])


def money_of(inmate):
    spendable = Account.objects.get(inmate=inmate, kind=Account.Kind.SPENDABLE)
    period = MonthlyPeriod.objects.get(inmate=inmate)
    return spendable.balance_fen, spendable.pending_fen, period.received_fen, period.reserved_fen


def test_a_deposit_that_fires_a_rule_is_held_with_its_room_still_reserved(client, inmate):
    rule = rule_at(inmate.facility, Rule.Kind.AMOUNT_AT_LEAST, amount_fen=50_000)
    payment = paid(client, inmate, 50_000)
    assert payment.deposit.status == Deposit.Status.HELD
    assert payment.status == Payment.Status.SETTLED
    assert money_of(inmate) == (0, 50_000, 0, 50_000)
    hold = Hold.objects.get(deposit=payment.deposit)
    assert hold.state == Hold.State.PENDING
    assert [(v.rule_id, v.version) for v in hold.fired.all()] == [(rule.pk, 1)]
    assert not Transaction.objects.filter(deposit=payment.deposit).exists()
    # A replayed callback changes nothing and records no second hold.
    assert post_callback(client, callback_body(payment)).status_code == 200
    assert Hold.objects.count() == 1 and money_of(inmate) == (0, 50_000, 0, 50_000)


def test_one_yuan_below_the_threshold_is_credited_at_once(client, inmate):
    rule_at(inmate.facility, Rule.Kind.AMOUNT_AT_LEAST, amount_fen=50_000)
    payment = paid(client, inmate, 49_999)
    assert payment.deposit.status == Deposit.Status.CREDITED
    assert not Hold.objects.exists()


def test_accept_credits_once_and_sends_the_receipt(
    client, inmate, officer, queued_payment_tasks, django_capture_on_commit_callbacks
):
    rule_at(inmate.facility, Rule.Kind.NOT_WHOLE_YUAN)
    payment = paid(client, inmate, 12_345)
    hold = Hold.objects.get()
    assert queued_payment_tasks[queueing.SEND_RECEIPT] == []  # held: no receipt yet
    with django_capture_on_commit_callbacks(execute=True):
        services.accept_hold(hold_id=hold.pk, staff=officer)
    with pytest.raises(services.HoldAlreadyDecided):
        services.accept_hold(hold_id=hold.pk, staff=officer)
    with pytest.raises(services.HoldAlreadyDecided):
        services.reject_hold(hold_id=hold.pk, staff=officer, reasons=["potential_fraud"])
    assert money_of(inmate) == (12_345, 0, 12_345, 0)
    assert Transaction.objects.filter(deposit=payment.deposit).count() == 1
    hold.refresh_from_db()
    assert (hold.state, hold.decided_by) == (Hold.State.ACCEPTED, officer)
    assert queued_payment_tasks[queueing.SEND_RECEIPT] == [{"payment_id": payment.pk}]


def test_reject_refunds_once_through_the_outbox_and_frees_the_room(client, inmate, officer):
    rule_at(inmate.facility, Rule.Kind.NOT_WHOLE_YUAN)
    payment = paid(client, inmate, 12_345)
    hold = Hold.objects.get()
    with pytest.raises(services.RejectionNeedsReason):
        services.reject_hold(hold_id=hold.pk, staff=officer, reasons=[])
    with pytest.raises(services.RejectionNeedsReason):
        services.reject_hold(hold_id=hold.pk, staff=officer, reasons=["other"], text=" ")
    services.reject_hold(hold_id=hold.pk, staff=officer, reasons=["several_inmates"])
    with pytest.raises(services.HoldAlreadyDecided):
        services.reject_hold(hold_id=hold.pk, staff=officer, reasons=["several_inmates"])
    with pytest.raises(services.HoldAlreadyDecided):
        services.accept_hold(hold_id=hold.pk, staff=officer)
    assert money_of(inmate) == (0, 0, 0, 0)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert payment.deposit.status == Deposit.Status.REFUNDED
    refunds = ProviderCall.objects.filter(payment=payment, kind=ProviderCall.Kind.REFUND)
    assert refunds.count() == 1
    assert not Transaction.objects.filter(deposit=payment.deposit).exists()


def test_the_caps_count_a_held_deposit(client, inmate):
    rule_at(inmate.facility, Rule.Kind.AMOUNT_AT_LEAST, amount_fen=60_000)
    paid(client, inmate, 60_000)  # held: 600 of the month's 1,000 yuan reserved
    credited_deposit(inmate, 40_000)  # exactly the rest
    with pytest.raises(errors.MonthlyCapExceeded):
        ledger.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=1,
            idempotency_key=key(),
        )


def test_reconciliation_is_clean_with_holds_outstanding_and_decided(
    client, inmate, officer, assert_ledger_consistent
):
    rule_at(inmate.facility, Rule.Kind.NOT_WHOLE_YUAN)
    first, second, third = (paid(client, inmate, amount) for amount in (101, 202, 303))
    holds = {hold.deposit_id: hold for hold in Hold.objects.all()}
    assert_ledger_consistent()
    services.accept_hold(hold_id=holds[first.deposit_id].pk, staff=officer)
    services.reject_hold(
        hold_id=holds[second.deposit_id].pk, staff=officer, reasons=["other"], text="report 17"
    )
    assert_ledger_consistent()
    assert money_of(inmate) == (101, 303, 101, 303)


def test_an_undecided_hold_is_refunded_after_the_deadline_and_not_a_second_before(client, inmate):
    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payment = paid(client, inmate, 10_000)
    hold = Hold.objects.get()
    deadline = hold.created_at + dt.timedelta(days=14)
    assert services.refund_stale_holds(now=deadline - dt.timedelta(seconds=1)) == 0
    assert services.refund_stale_holds(now=deadline) == 1
    assert services.refund_stale_holds(now=deadline) == 0
    hold.refresh_from_db()
    assert hold.state == Hold.State.TIMED_OUT and hold.reason_text == services.TIMEOUT_REASON
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.REFUNDED
    assert money_of(inmate) == (0, 0, 0, 0)


def test_a_held_deposit_is_never_expired(client, inmate):
    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payment = paid(client, inmate, 10_000)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(days=2))
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.HELD


def test_a_late_payment_that_fires_a_rule_is_reserved_again_and_held(client, inmate):
    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payment = started(inmate, 10_000)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(hours=1))
    assert post_callback(client, callback_body(payment)).status_code == 200
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.HELD
    assert money_of(inmate) == (0, 10_000, 0, 10_000)


def test_an_auto_accepted_pair_skips_the_rules(client, inmate):
    from monitoring.models import AutoAccept
    from tests.payments.helpers import depositor

    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    family = depositor()
    AutoAccept.objects.create(
        facility=inmate.facility, depositor=family, inmate=inmate, reason="Mother, checked"
    )
    assert paid(client, inmate, 10_000, user=family).deposit.status == Deposit.Status.CREDITED


def test_release_waits_for_held_deposits_to_be_decided(client, inmate, officer):
    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    paid(client, inmate, 10_000)
    with pytest.raises(errors.DepositsHeldForReview):
        ledger.close_inmate_ledger(
            inmate_id=inmate.pk,
            staff_id=officer.pk,
            idempotency_scope=f"staff:{officer.pk}",
            idempotency_key=key(),
        )


def test_a_changed_rule_keeps_its_old_version_and_the_hold_names_the_one_that_fired(
    client, inmate, officer
):
    rule = rule_at(inmate.facility, Rule.Kind.AMOUNT_AT_LEAST, amount_fen=10_000)
    paid(client, inmate, 10_000)
    rule.amount_fen = 20_000
    services.save_rule(rule=rule, staff=officer)
    assert list(
        rule.versions.order_by("version").values_list("version", "parameters__amount_fen")
    ) == [(1, 10_000), (2, 20_000)]
    assert Hold.objects.get().fired.get().version == 1


def test_the_demo_seeds_a_watched_depositor_with_two_held_deposits(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "credentials.json"
    call_command("seed_demo", "--inmates", "5", "--credentials-out", str(out), verbosity=0)
    import json

    credentials = json.loads(out.read_text())
    assert credentials["monitoring"] == {
        "watched_depositor": "watched.sender@example.com",
        "held_deposits": 2,
    }
    assert Hold.objects.filter(state=Hold.State.PENDING).count() == 2
    assert "security_officer" in credentials["facilities"][0]["staff"]
    call_command("seed_demo", "--inmates", "5", "--credentials-out", str(out), verbosity=0)
    assert Hold.objects.count() == 2  # seeding again adds nothing


def test_the_depositors_data_export_has_their_reviews_but_not_the_rules_or_notes(
    client, inmate, officer
):
    from family.services import depositor_data
    from tests.payments.helpers import depositor

    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate, note="secret note")
    family = depositor()
    payment = paid(client, inmate, 10_000, user=family)
    hold = Hold.objects.get()
    services.reject_hold(hold_id=hold.pk, staff=officer, reasons=["other"], text="intelligence 42")
    reviews = depositor_data(depositor=family)["reviews"]
    assert [(r["deposit"], r["outcome"]) for r in reviews] == [
        (str(payment.deposit.reference), "rejected")
    ]
    exported = str(depositor_data(depositor=family))
    assert "intelligence 42" not in exported and "secret note" not in exported
    assert "monitored_inmate" not in exported


def test_decided_holds_past_the_retention_period_are_purged_and_money_records_stay(
    client, inmate, officer, settings
):
    from django.core.management import call_command

    settings.MONITORING_RETENTION_DAYS = 30
    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payment = paid(client, inmate, 10_000)
    services.accept_hold(hold_id=Hold.objects.get().pk, staff=officer)
    pending = paid(client, inmate, 5_000)
    later = timezone.now() + dt.timedelta(days=31)
    assert services.purgeable(now=later)["holds"].count() == 1
    assert services.purge_monitoring_data(now=later) == {
        "holds": 1,
        "auto_accepts": 0,
        "payer_names": 0,
    }
    assert list(Hold.objects.values_list("deposit_id", flat=True)) == [pending.deposit_id]
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.CREDITED
    call_command("purge_monitoring_data", "--dry-run")


def test_reconciliation_reports_a_held_deposit_whose_payment_is_not_settled(client, inmate):
    from ledger.reconciliation import run_checks

    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payment = paid(client, inmate, 10_000)
    Payment.objects.filter(pk=payment.pk).update(status="pending")
    findings = [f for f in run_checks() if f.check == "provider_settlement_mismatch"]
    assert [(f.subject, f.actual) for f in findings] == [
        (f"deposit {payment.deposit_id}", "pending")
    ]


def test_a_held_deposits_receipt_is_neither_swept_nor_sent_until_accepted(
    client, inmate, officer, queued_payment_tasks, django_capture_on_commit_callbacks
):
    from payments.services import receipts

    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payment = paid(client, inmate, 10_000)
    sweep_at = payment.settled_at + receipts.RECEIPT_SWEEP_AFTER + dt.timedelta(seconds=1)
    receipts.queue_unsent_receipts(now=sweep_at)
    assert queued_payment_tasks[queueing.SEND_RECEIPT] == []
    assert receipts.send_receipt_once(payment_id=payment.pk) is False
    assert Payment.objects.get(pk=payment.pk).receipt_sent_at is None
    with django_capture_on_commit_callbacks(execute=True):
        services.accept_hold(hold_id=Hold.objects.get().pk, staff=officer)
    assert receipts.send_receipt_once(payment_id=payment.pk) is True


def test_deciding_and_taking_a_held_deposit_are_in_the_audit_trail_with_the_facility(
    client, inmate, officer
):
    """Decisions and assignments are single UPDATEs (no model signal sees them): the service
    writes each entry, with who, the facility and the state before and after."""
    from auditlog.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    rule_at(inmate.facility, Rule.Kind.NOT_WHOLE_YUAN)
    paid(client, inmate, 12_345)
    paid(client, inmate, 23_456)
    first, second = Hold.objects.order_by("pk")
    services.assign_hold(hold_id=first.pk, staff=officer)
    services.accept_hold(hold_id=first.pk, staff=officer)
    services.reject_hold(
        hold_id=second.pk, staff=officer, reasons=["other"], text="Sender under investigation"
    )
    holds = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Hold))
    assert all(
        entry.additional_data["facility_id"] == inmate.facility.pk for entry in holds
    )  # the holds' creation too, so the facility's auditors see them
    assigned, accepted = holds.filter(object_pk=str(first.pk), action=1).order_by("pk")
    assert assigned.changes == {"assigned_to": [None, officer.pk]}
    assert accepted.actor == officer
    assert accepted.changes["state"] == [Hold.State.PENDING, Hold.State.ACCEPTED]
    rejected = holds.get(object_pk=str(second.pk), action=1)
    assert rejected.actor == officer
    assert rejected.changes["state"] == [Hold.State.PENDING, Hold.State.REJECTED]
    assert rejected.changes["reasons"] == [[], ["other"]]
    assert rejected.changes["reason_text"] == ["", "Sender under investigation"]
