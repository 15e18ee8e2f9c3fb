"""Deposits racing on PostgreSQL: both caps hold and idempotency keys move money once, however
many requests arrive at the same instant; deposits for different inmates do not wait on each
other. Every thread starts behind a barrier, and the money is read back from the database."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from commissary import errors
from facilities.services import update_facility_caps
from ledger import services
from ledger.models import Deposit, MonthlyPeriod, Transaction
from ledger.reconciliation import run_checks
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def _deposit(inmate_id, amount_fen, key, *, now, credit=True):
    deposit = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate_id,
        amount_fen=amount_fen,
        idempotency_key=key,
        now=now,
    )
    if credit:
        deposit = services.credit_deposit(deposit_id=deposit.pk, now=now)
    return deposit


def _errors(outcomes):
    return [type(outcome.error) for outcome in outcomes if not outcome.succeeded]


def test_fifty_simultaneous_deposits_stop_exactly_at_the_monthly_cap(run_together, inmate_money):
    now = timezone.now()
    inmate = InmateFactory()  # monthly cap 100,000 fen, balance cap 500,000 fen

    outcomes = run_together(
        [lambda n=n: _deposit(inmate.pk, 3_000, f"race-{n}", now=now) for n in range(50)]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 33
    assert _errors(outcomes) == [errors.MonthlyCapExceeded] * 17
    money = inmate_money(inmate, now=now)
    assert (money.month_received_fen, money.month_reserved_fen) == (99_000, 0)
    assert (money.spendable_fen, money.held_fen, money.pending_fen) == (99_000, 0, 0)
    assert (money.deposits_credited, money.deposits_created) == (33, 0)
    assert run_checks() == []


def _build_up_over_earlier_months(inmate, amounts_fen, *, now):
    """Credit one deposit per earlier month (the month before ``now`` for the last amount),
    since the monthly cap keeps one month from getting anywhere near the balance cap."""
    for months_back, amount_fen in zip(range(len(amounts_fen), 0, -1), amounts_fen, strict=True):
        _deposit(
            inmate.pk,
            amount_fen,
            f"earlier-{months_back}",
            now=now - dt.timedelta(days=31 * months_back),
        )


def test_simultaneous_deposits_never_take_money_and_held_money_over_the_balance_cap(
    run_together, inmate_money
):
    now = timezone.now()
    inmate = InmateFactory()
    staff = StaffFactory(facilities=[inmate.facility])
    _build_up_over_earlier_months(inmate, [100_000, 100_000, 100_000, 100_000, 90_500], now=now)
    # Held money still counts against the cap: move some of it there first.
    services.hold_funds(
        inmate_id=inmate.pk,
        amount_fen=200_000,
        reason="court order",
        staff_id=staff.pk,
        idempotency_key="hold",
        now=now,
    )
    # 9,500 fen of room; half the threads leave their deposit reserved (pending), half credit it.
    outcomes = run_together(
        [
            lambda n=n: _deposit(inmate.pk, 1_000, f"race-{n}", now=now, credit=n % 2 == 0)
            for n in range(30)
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 9
    assert _errors(outcomes) == [errors.BalanceCapExceeded] * 21
    money = inmate_money(inmate, now=now)
    assert money.total_fen == 499_500 <= money.balance_cap_fen == 500_000
    assert money.held_fen == 200_000
    assert money.month_received_fen + money.month_reserved_fen == 9_000
    assert money.pending_fen == money.month_reserved_fen
    assert run_checks(now=now) == []


def test_simultaneous_deposits_of_mixed_sizes_fill_the_balance_cap_and_no_more(
    run_together, inmate_money
):
    now = timezone.now()
    facility = FacilityFactory()
    # Raise the monthly cap so that only the balance cap can bind this month.
    update_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=1_000_000, balance_cap_fen=500_000
    )
    inmate = InmateFactory(facility=facility)
    _deposit(inmate.pk, 480_000, "start", now=now)
    amounts_fen = [1_000 + 250 * (n % 13) for n in range(40)]

    outcomes = run_together(
        [
            lambda n=n, amount_fen=amount_fen: _deposit(
                inmate.pk, amount_fen, f"race-{n}", now=now, credit=n % 3 != 0
            )
            for n, amount_fen in enumerate(amounts_fen)
        ]
    )

    assert set(_errors(outcomes)) == {errors.BalanceCapExceeded}
    money = inmate_money(inmate, now=now)
    accepted_fen = sum(
        amount_fen
        for amount_fen, outcome in zip(amounts_fen, outcomes, strict=True)
        if outcome.succeeded
    )
    assert money.total_fen == 480_000 + accepted_fen <= 500_000
    assert money.month_received_fen + money.month_reserved_fen == 480_000 + accepted_fen
    # Only deposits ever ran, so room only shrank: every refused deposit is too big for what
    # is left now, i.e. nothing was refused that would have fitted.
    room_fen = money.balance_cap_fen - money.total_fen
    refused_fen = [
        amount_fen
        for amount_fen, outcome in zip(amounts_fen, outcomes, strict=True)
        if not outcome.succeeded
    ]
    assert refused_fen and min(refused_fen) > room_fen
    assert run_checks(now=now) == []


def test_one_deposit_key_sent_ten_times_at_once_reserves_and_credits_once(
    run_together, inmate_money
):
    now = timezone.now()
    inmate = InmateFactory()

    reserved = run_together(
        [
            lambda: services.reserve_deposit(
                idempotency_scope="depositor:1",
                inmate_id=inmate.pk,
                amount_fen=20_000,
                idempotency_key="family-1",
                now=now,
            )
        ]
        * 10
    )

    assert all(outcome.succeeded for outcome in reserved), _errors(reserved)
    deposit_ids = {outcome.value.pk for outcome in reserved}
    assert len(deposit_ids) == 1
    assert Deposit.objects.filter(inmate=inmate).count() == 1
    money = inmate_money(inmate, now=now)
    assert (money.pending_fen, money.month_reserved_fen, money.spendable_fen) == (20_000, 20_000, 0)

    (deposit_id,) = deposit_ids
    credited = run_together([lambda: services.credit_deposit(deposit_id=deposit_id, now=now)] * 10)

    assert all(outcome.succeeded for outcome in credited), _errors(credited)
    assert {outcome.value.status for outcome in credited} == {Deposit.Status.CREDITED}
    assert Transaction.objects.filter(deposit_id=deposit_id).count() == 1
    money = inmate_money(inmate, now=now)
    assert (money.spendable_fen, money.pending_fen) == (20_000, 0)
    assert (money.month_received_fen, money.month_reserved_fen) == (20_000, 0)
    assert run_checks(now=now) == []


def test_one_deposit_key_sent_at_once_for_different_amounts_reserves_only_one(
    run_together, inmate_money
):
    now = timezone.now()
    inmate = InmateFactory()
    amounts_fen = [10_000 + 1_000 * n for n in range(10)]

    outcomes = run_together(
        [
            lambda amount_fen=amount_fen: services.reserve_deposit(
                idempotency_scope="depositor:1",
                inmate_id=inmate.pk,
                amount_fen=amount_fen,
                idempotency_key="family-1",
                now=now,
            )
            for amount_fen in amounts_fen
        ]
    )

    winners = [outcome.value for outcome in outcomes if outcome.succeeded]
    assert len(winners) == 1
    assert _errors(outcomes) == [errors.IdempotencyConflict] * 9
    assert Deposit.objects.filter(inmate=inmate).count() == 1
    money = inmate_money(inmate, now=now)
    assert money.pending_fen == money.month_reserved_fen == winners[0].amount_fen
    assert run_checks(now=now) == []


def test_a_deposit_in_flight_for_one_inmate_does_not_hold_up_another_inmates_deposit(
    inmate_money,
):
    """An open deposit transaction for inmate A holds everything a deposit holds (A's account
    rows, keys on the facility's clearing and fee accounts). A deposit for inmate B in the same
    facility completes meanwhile; a second deposit for A waits until the first commits."""
    now = timezone.now()
    facility = FacilityFactory(deposit_fee_fixed_fen=200)
    inmate_a, inmate_b = InmateFactory(facility=facility), InmateFactory(facility=facility)
    a_in_flight, let_a_commit = threading.Event(), threading.Event()
    finished = {}

    def first_deposit_for_a():
        try:
            with transaction.atomic():
                _deposit(inmate_a.pk, 5_000, "a-1", now=now)
                a_in_flight.set()
                let_a_commit.wait(timeout=30)
            finished["a-1"] = True
        finally:
            connection.close()

    def deposit(name, inmate, key):
        try:
            with connection.cursor() as cursor:
                # Fail rather than wait, should this deposit queue behind the other inmate.
                cursor.execute("SET lock_timeout = '10s'")
            finished[name] = _deposit(inmate.pk, 5_000, key, now=now)
        except BaseException as error:
            finished[name] = error
        finally:
            connection.close()

    holder = threading.Thread(target=first_deposit_for_a, daemon=True)
    holder.start()
    assert a_in_flight.wait(timeout=30)
    other_inmate = threading.Thread(target=deposit, args=("b", inmate_b, "b-1"), daemon=True)
    same_inmate = threading.Thread(target=deposit, args=("a-2", inmate_a, "a-2"), daemon=True)
    try:
        other_inmate.start()
        same_inmate.start()
        other_inmate.join(timeout=5)
        same_inmate.join(timeout=1)
        b_done_while_a_open = not other_inmate.is_alive()
        a2_waited = same_inmate.is_alive()
    finally:
        let_a_commit.set()
        for thread in (holder, other_inmate, same_inmate):
            thread.join(timeout=30)

    assert b_done_while_a_open and isinstance(finished["b"], Deposit), finished.get("b")
    assert a2_waited, "the second deposit for the same inmate did not wait for the row lock"
    assert isinstance(finished["a-2"], Deposit), finished["a-2"]
    assert inmate_money(inmate_a, now=now).spendable_fen == 10_000
    assert inmate_money(inmate_b, now=now).spendable_fen == 5_000
    assert MonthlyPeriod.objects.filter(inmate__in=[inmate_a, inmate_b]).count() == 2
    assert run_checks(now=now) == []
