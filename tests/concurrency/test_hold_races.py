"""Held deposits under concurrent reviewers, on PostgreSQL threads: repeated and concurrent
accepts credit once; an accept racing a reject ends in exactly one of the two, with the money
to match; a hold racing the reservation's expiry ends in exactly one of the two."""

import datetime as dt

import pytest
from django.utils import timezone

from ledger import batch
from ledger.models import Account, Deposit, Transaction
from monitoring import services
from monitoring.models import Hold, Rule
from payments import services as payments
from payments.models import Payment, ProviderCall
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.monitoring.helpers import rule_at, started

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


@pytest.fixture(autouse=True)
def _sandbox_on(settings):
    settings.PAYMENTS_SANDBOX = True


@pytest.fixture
def held():
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    rule_at(facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payment = started(inmate, 30_000)
    payments.apply_provider_status(payment_id=payment.pk, status="settled")
    hold = Hold.objects.get(deposit_id=payment.deposit_id)
    officers = [StaffFactory(facilities=[facility]) for _ in range(2)]
    return hold, inmate, officers


def spendable_of(inmate) -> int:
    return Account.objects.get(inmate=inmate, kind=Account.Kind.SPENDABLE).balance_fen


def test_eight_concurrent_accepts_credit_once(held, run_together):
    hold, inmate, (officer, _other) = held
    outcomes = run_together(
        [lambda: services.accept_hold(hold_id=hold.pk, staff=officer) for _ in range(8)]
    )
    assert sum(outcome.succeeded for outcome in outcomes) == 1
    assert all(
        isinstance(outcome.error, services.HoldAlreadyDecided)
        for outcome in outcomes
        if not outcome.succeeded
    )
    assert spendable_of(inmate) == 30_000
    assert Transaction.objects.filter(deposit_id=hold.deposit_id).count() == 1


def test_an_accept_racing_a_reject_ends_in_exactly_one(held, run_together):
    hold, inmate, (first, second) = held
    outcomes = run_together(
        [
            lambda: services.accept_hold(hold_id=hold.pk, staff=first),
            lambda: services.reject_hold(
                hold_id=hold.pk, staff=second, reasons=["other"], text="report"
            ),
        ]
    )
    assert sum(outcome.succeeded for outcome in outcomes) == 1
    hold.refresh_from_db()
    deposit = Deposit.objects.get(pk=hold.deposit_id)
    refunds = ProviderCall.objects.filter(payment__deposit_id=hold.deposit_id).count()
    if hold.state == Hold.State.ACCEPTED:
        assert (deposit.status, spendable_of(inmate), refunds) == ("credited", 30_000, 0)
    else:
        assert hold.state == Hold.State.REJECTED
        assert (deposit.status, spendable_of(inmate), refunds) == ("refunded", 0, 1)
        assert Payment.objects.get(deposit_id=hold.deposit_id).status == Payment.Status.REFUNDED


def test_a_hold_racing_the_reservations_expiry_ends_in_exactly_one(run_together):
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    rule_at(facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payments_started = [started(inmate, 10_000) for _ in range(4)]
    later = timezone.now() + dt.timedelta(hours=1)
    calls = [
        lambda payment=payment: payments.apply_provider_status(
            payment_id=payment.pk, status="settled", now=later
        )
        for payment in payments_started
    ]
    calls.append(lambda: batch.expire_stale_deposits(now=later))
    outcomes = run_together(calls)
    assert all(outcome.succeeded for outcome in outcomes), [o.error for o in outcomes]
    # Whichever came first, every paid deposit is held (a late one reserved again), never
    # credited and never both expired and held.
    statuses = set(Deposit.objects.filter(inmate=inmate).values_list("status", flat=True))
    assert statuses == {"held"}
    assert Hold.objects.filter(inmate=inmate).count() == 4
    assert spendable_of(inmate) == 0
    assert Account.objects.get(inmate=inmate, kind=Account.Kind.SPENDABLE).pending_fen == 40_000
