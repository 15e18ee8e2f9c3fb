"""Family deposits racing on PostgreSQL through the payments service (what the deposit form
calls): two deposits that together exceed the monthly cap cannot both be reserved, and a
facility's deposits-a-month limit and single-deposit limit hold under the same race. Every
thread starts behind a barrier; the money is read back from the database."""

import pytest
from django.utils import timezone

from ledger.models import Deposit
from ledger.reconciliation import run_checks
from payments import services as payments
from payments.models import Payment
from tests.factories import FacilityFactory, InmateFactory
from tests.payments.helpers import approved_link, depositor

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _sandbox_on(settings):
    settings.PAYMENTS_SANDBOX = True


def _start(user, link, amount_fen, key):
    return payments.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=amount_fen, idempotency_key=key
    )


def _families(inmate, count):
    pairs = []
    for _ in range(count):
        user = depositor()
        pairs.append((user, approved_link(user, inmate)))
    return pairs


def test_two_deposits_together_over_the_monthly_cap_cannot_both_be_reserved(
    run_together, inmate_money
):
    now = timezone.now()
    inmate = InmateFactory()  # monthly cap 1,000 yuan
    families = _families(inmate, 2)

    outcomes = run_together(
        [
            lambda user=user, link=link, n=n: _start(user, link, 60_000, f"race-{n}")
            for n, (user, link) in enumerate(families)
        ]
    )

    assert sorted(outcome.succeeded for outcome in outcomes) == [False, True]
    refusal = next(outcome.error for outcome in outcomes if not outcome.succeeded)
    assert isinstance(refusal, payments.OverDepositRoom)
    assert refusal.can_send_fen == 40_000
    money = inmate_money(inmate, now=now)
    assert (money.month_reserved_fen, money.pending_fen, money.deposits_created) == (
        60_000,
        60_000,
        1,
    )
    assert Payment.objects.count() == 1
    assert run_checks() == []


def test_deposits_a_month_limit_holds_when_deposits_race(run_together, inmate_money):
    now = timezone.now()
    facility = FacilityFactory(max_deposits_per_month=1, max_deposit_fen=100_000)
    inmate = InmateFactory(facility=facility)
    families = _families(inmate, 6)

    outcomes = run_together(
        [
            lambda user=user, link=link, n=n: _start(user, link, 1_000, f"count-{n}")
            for n, (user, link) in enumerate(families)
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 1
    assert all(
        isinstance(outcome.error, payments.OverDepositRoom)
        for outcome in outcomes
        if not outcome.succeeded
    )
    money = inmate_money(inmate, now=now)
    assert (money.month_reserved_fen, money.deposits_created) == (1_000, 1)
    assert Deposit.objects.filter(inmate=inmate).count() == 1
    assert run_checks() == []


def test_ledger_refuses_a_deposit_over_the_single_deposit_limit(inmate_money):
    from commissary import errors
    from ledger import services as ledger

    now = timezone.now()
    inmate = InmateFactory(facility=FacilityFactory(max_deposit_fen=50_000))
    with pytest.raises(errors.DepositOverSingleLimit):
        ledger.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=50_001,
            idempotency_key="single-limit",
        )
    assert inmate_money(inmate, now=now).deposits_created == 0


def test_ledger_counts_deposits_a_month_under_the_inmate_lock(run_together, inmate_money):
    """Straight at the ledger, without the page's early check: only the lock decides."""
    from commissary import errors
    from ledger import services as ledger

    now = timezone.now()
    inmate = InmateFactory(facility=FacilityFactory(max_deposits_per_month=2))

    outcomes = run_together(
        [
            lambda n=n: ledger.reserve_deposit(
                idempotency_scope="depositor:1",
                inmate_id=inmate.pk,
                amount_fen=1_000,
                idempotency_key=f"ledger-count-{n}",
                now=now,
            )
            for n in range(8)
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 2
    assert [type(outcome.error) for outcome in outcomes if not outcome.succeeded] == [
        errors.MonthlyDepositCountExceeded
    ] * 6
    assert inmate_money(inmate, now=now).deposits_created == 2
    assert run_checks() == []
