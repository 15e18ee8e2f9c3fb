"""Provider callbacks: verified in constant time with a 5-minute tolerance, refused when the
amount or currency differs, idempotent; a payment that settles after its deposit expired is
credited if it still fits and refunded if it does not; a poll finds a lost callback."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from ledger import batch
from ledger.models import Deposit, Transaction
from ledger.reconciliation import run_checks
from payments import services
from payments.models import Payment, SandboxCharge
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit as credited_deposit
from tests.ledger.helpers import key

from .helpers import approved_link, callback_body, depositor, post_callback

pytestmark = pytest.mark.django_db


def started(amount_fen=10_000, *, inmate=None, now=None):
    user = depositor()
    inmate = inmate or InmateFactory()
    link = approved_link(user, inmate)
    reserved, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=amount_fen, idempotency_key=key(), now=now
    )
    return Payment.objects.get(deposit=reserved)


def spendable_fen(inmate_id):
    from ledger.models import Account

    return Account.objects.get(inmate_id=inmate_id, kind="spendable").balance_fen


def test_replayed_callback_credits_once(client, assert_ledger_consistent):
    payment = started(10_000)
    body = callback_body(payment)
    answers = [post_callback(client, body).status_code for _ in range(5)]
    assert answers == [200] * 5
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert payment.deposit.status == Deposit.Status.CREDITED
    assert Transaction.objects.filter(deposit=payment.deposit).count() == 1
    assert spendable_fen(payment.deposit.inmate_id) == 10_000
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"secret": b"not the sandbox secret"}, id="forged-signature"),
        pytest.param({"age_seconds": 301}, id="stale-timestamp"),
        pytest.param({"age_seconds": -301}, id="future-timestamp"),
        pytest.param({"amount_fen": 10_001}, id="changed-amount"),
        pytest.param({"currency": "USD"}, id="changed-currency"),
        pytest.param({"reference": "00000000-0000-0000-0000-000000000000"}, id="unknown-deposit"),
    ],
)
def test_untrustworthy_callback_is_refused_and_credits_nothing(client, tamper, ledger_snapshot):
    payment = started(10_000)
    tamper = dict(tamper)
    signing = {"secret": tamper.pop("secret")} if "secret" in tamper else {}
    if "age_seconds" in tamper:
        signing["timestamp"] = int(time.time()) - tamper.pop("age_seconds")
    before = ledger_snapshot()
    answer = post_callback(client, callback_body(payment, **tamper), **signing)
    assert answer.status_code == 400
    assert ledger_snapshot() == before
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_body_changed_after_signing_is_refused(client, ledger_snapshot):
    payment = started(10_000)
    from payments.providers.sandbox import SIGNATURE_HEADER, signature_header

    signed = signature_header(callback_body(payment), timestamp=int(time.time()))
    before = ledger_snapshot()
    answer = client.post(
        "/payments/sandbox/callback",
        data=callback_body(payment, amount_fen=payment.amount_fen + 1),
        content_type="application/json",
        headers={SIGNATURE_HEADER: signed},
    )
    assert answer.status_code == 400
    assert ledger_snapshot() == before


def test_sandbox_callback_is_refused_when_the_sandbox_is_off(client, settings, ledger_snapshot):
    payment = started(10_000)
    settings.PAYMENTS_SANDBOX = False
    before = ledger_snapshot()
    assert post_callback(client, callback_body(payment)).status_code == 400
    assert ledger_snapshot() == before


def test_failed_payment_releases_the_reservation(client, assert_ledger_consistent):
    payment = started(10_000)
    assert post_callback(client, callback_body(payment, status="failed")).status_code == 200
    payment.refresh_from_db()
    assert payment.status == Payment.Status.FAILED
    assert payment.deposit.status == Deposit.Status.FAILED
    assert spendable_fen(payment.deposit.inmate_id) == 0
    assert_ledger_consistent()


def _expire(payment):
    later = timezone.now() + dt.timedelta(hours=1)
    batch.expire_stale_deposits(now=later)
    payment.deposit.refresh_from_db()
    assert payment.deposit.status == Deposit.Status.EXPIRED


def test_late_payment_that_still_fits_is_credited(client, assert_ledger_consistent):
    payment = started(10_000)
    _expire(payment)
    assert post_callback(client, callback_body(payment)).status_code == 200
    payment.refresh_from_db()
    payment.deposit.refresh_from_db()
    assert payment.deposit.status == Deposit.Status.CREDITED
    assert payment.status == Payment.Status.SETTLED
    assert spendable_fen(payment.deposit.inmate_id) == 10_000
    assert_ledger_consistent()


def test_late_payment_that_no_longer_fits_is_refunded_never_credited(
    client, assert_ledger_consistent, django_capture_on_commit_callbacks, queued_provider_calls
):
    inmate = InmateFactory()
    payment = started(60_000, inmate=inmate)
    _expire(payment)
    credited_deposit(inmate, 50_000)  # the month's room is now 500 yuan, less than 600
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert post_callback(client, callback_body(payment)).status_code == 200
    assert queued_provider_calls.run() == ["done"]
    payment.refresh_from_db()
    payment.deposit.refresh_from_db()
    assert payment.deposit.status == Deposit.Status.REFUNDED
    assert payment.status == Payment.Status.REFUNDED
    assert SandboxCharge.objects.get(reference=payment.provider_reference).status == "refunded"
    assert not Transaction.objects.filter(deposit=payment.deposit).exists()
    assert spendable_fen(inmate.pk) == 50_000
    assert_ledger_consistent()


def test_late_payment_over_the_deposit_count_is_refunded(client, assert_ledger_consistent):
    facility = FacilityFactory(max_deposits_per_month=1)
    inmate = InmateFactory(facility=facility)
    payment = started(10_000, inmate=inmate)
    _expire(payment)
    credited_deposit(inmate, 5_000)
    assert post_callback(client, callback_body(payment)).status_code == 200
    payment.deposit.refresh_from_db()
    assert payment.deposit.status == Deposit.Status.REFUNDED
    assert spendable_fen(inmate.pk) == 5_000
    assert_ledger_consistent()


def test_poll_credits_a_payment_whose_callback_was_lost(assert_ledger_consistent):
    payment = started(10_000)
    SandboxCharge.objects.filter(reference=payment.provider_reference).update(status="paid")
    asked = services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    assert asked == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert spendable_fen(payment.deposit.inmate_id) == 10_000
    assert_ledger_consistent()


def test_reconciliation_reports_a_settled_payment_without_a_credited_deposit():
    payment = started(10_000)
    Payment.objects.filter(pk=payment.pk).update(status="settled", settled_at=timezone.now())
    findings = [f for f in run_checks() if f.check == "provider_settlement_mismatch"]
    assert [(f.subject, f.expected, f.actual) for f in findings] == [
        (f"deposit {payment.deposit_id}", "credited or held", "created")
    ]


def test_reconciliation_reports_a_credited_family_deposit_without_a_settled_payment(
    client,
):
    payment = started(10_000)
    post_callback(client, callback_body(payment))
    Payment.objects.filter(pk=payment.pk).update(status="pending")
    findings = [f for f in run_checks() if f.check == "provider_settlement_mismatch"]
    assert len(findings) == 1
    assert findings[0].actual == "pending"


def test_the_poll_runs_every_five_minutes_as_a_registered_task():
    from django_celery_beat.models import PeriodicTask

    from commissary.celery import app
    from ledger.schedules import ensure_schedules

    ensure_schedules()
    poll = PeriodicTask.objects.get(name="Poll pending payments")
    assert (poll.interval.every, poll.interval.period) == (5, "minutes")
    app.loader.import_default_modules()
    assert poll.task in app.tasks
