"""Invariants 3 and 4 at their boundaries: the monthly deposit cap (1,000.00 a facility-local
calendar month) and the balance cap (5,000.00 at any moment), reserved money included."""

import pytest

from commissary import errors
from ledger import services
from ledger.models import Deposit, MonthlyPeriod
from ledger.selectors import inmate_balance
from tests.factories import InmateFactory

from .helpers import deposit, key, month_start, post_purchase, staff_at

pytestmark = pytest.mark.django_db


def test_deposits_up_to_exactly_the_monthly_cap_are_accepted():
    inmate = InmateFactory()
    deposit(inmate, 60_000)
    deposit(inmate, 40_000)
    assert inmate_balance(inmate=inmate).month_received_fen == 100_000


def test_one_fen_over_the_monthly_cap_is_refused_and_reserves_nothing(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 99_999)
    before = ledger_snapshot()
    with pytest.raises(errors.MonthlyCapExceeded):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=2,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before
    deposit(inmate, 1)
    assert inmate_balance(inmate=inmate).month_received_fen == 100_000


def test_a_single_deposit_of_1000_01_is_refused():
    inmate = InmateFactory()
    with pytest.raises(errors.MonthlyCapExceeded):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=100_001,
            idempotency_key=key(),
        )
    assert not Deposit.objects.exists()


def test_reserved_money_counts_against_the_monthly_cap():
    inmate = InmateFactory()
    services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=60_000,
        idempotency_key=key(),
    )
    with pytest.raises(errors.MonthlyCapExceeded):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=40_001,
            idempotency_key=key(),
        )
    period = MonthlyPeriod.objects.get(inmate=inmate)
    assert (period.received_fen, period.reserved_fen) == (0, 60_000)


def test_a_failed_deposit_gives_its_room_back():
    inmate = InmateFactory()
    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=100_000,
        idempotency_key=key(),
    )
    services.release_deposit(deposit_id=reserved.pk, status=Deposit.Status.FAILED)
    deposit(inmate, 100_000)
    balance = inmate_balance(inmate=inmate)
    assert (balance.month_received_fen, balance.month_reserved_fen) == (100_000, 0)
    assert (balance.spendable_fen, balance.pending_fen) == (100_000, 0)


def _fill_to(inmate, total_fen: int):
    """Credit ``total_fen`` over consecutive months of 2026 (100,000 fen a month)."""
    for month in range(1, 13):
        if total_fen <= 0:
            return month
        amount = min(100_000, total_fen)
        deposit(inmate, amount, now=month_start(2026, month))
        total_fen -= amount
    return 13


def test_a_balance_of_exactly_5000_is_accepted_and_one_fen_more_is_refused(ledger_snapshot):
    inmate = InmateFactory()
    next_month = _fill_to(inmate, 500_000)
    assert inmate_balance(inmate=inmate).spendable_fen == 500_000
    before = ledger_snapshot()
    with pytest.raises(errors.BalanceCapExceeded):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=1,
            idempotency_key=key(),
            now=month_start(2026, next_month),
        )
    assert ledger_snapshot() == before


def test_reserved_money_counts_against_the_balance_cap():
    inmate = InmateFactory()
    _fill_to(inmate, 450_000)  # January to May
    services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=50_000,
        idempotency_key=key(),
        now=month_start(2026, 6),
    )
    with pytest.raises(errors.BalanceCapExceeded):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=1,
            idempotency_key=key(),
            now=month_start(2026, 6),
        )


def test_held_money_counts_against_the_balance_cap():
    inmate = InmateFactory()
    staff = staff_at(inmate.facility)
    _fill_to(inmate, 500_000)
    services.hold_funds(
        inmate_id=inmate.pk,
        amount_fen=200_000,
        reason="investigation",
        staff_id=staff.pk,
        idempotency_key=key(),
    )
    with pytest.raises(errors.BalanceCapExceeded):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=1,
            idempotency_key=key(),
            now=month_start(2026, 7),
        )


def test_staff_credits_obey_the_balance_cap_but_not_the_monthly_cap():
    inmate = InmateFactory()
    staff, approver = staff_at(inmate.facility), staff_at(inmate.facility, may_approve=True)
    deposit(inmate, 100_000)
    services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=400_000,
        reason="transfer in",
        staff_id=staff.pk,
        approved_by_id=approver.pk,
        idempotency_key=key(),
    )
    assert inmate_balance(inmate=inmate).spendable_fen == 500_000
    with pytest.raises(errors.BalanceCapExceeded):
        services.adjust_balance(
            inmate_id=inmate.pk,
            amount_fen=1,
            reason="one fen more",
            staff_id=staff.pk,
            approved_by_id=approver.pk,
            idempotency_key=key(),
        )


def test_a_refund_over_the_cap_goes_to_held_money_and_then_blocks_deposits(
    assert_ledger_consistent,
):
    inmate = InmateFactory()
    _fill_to(inmate, 500_000)
    purchase = post_purchase(inmate.pk, 30_000)
    deposit(inmate, 20_000, now=month_start(2026, 7))  # back to 490,000 spendable
    services.refund_purchase(
        idempotency_scope="system",
        purchase_id=purchase.pk,
        amount_fen=30_000,
        idempotency_key=key(),
    )
    balance = inmate_balance(inmate=inmate)
    # 10,000 fits under the cap and is spendable; the other 20,000 is held.
    assert (balance.spendable_fen, balance.held_fen) == (500_000, 20_000)
    with pytest.raises(errors.BalanceCapExceeded):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=1,
            idempotency_key=key(),
            now=month_start(2026, 8),
        )
    assert_ledger_consistent()
