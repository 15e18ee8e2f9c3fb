"""Holds, freezes, adjustments and reversals: the staff side of the ledger."""

import pytest

from commissary import errors
from ledger import services
from ledger.models import AccountEvent
from ledger.selectors import inmate_balance
from tests.factories import InmateFactory, StaffFactory

from .helpers import deposit, key, post_purchase, set_frozen, staff_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return StaffFactory(is_superuser=True)  # may request at any facility


def test_held_money_cannot_be_spent_until_released(staff):
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    services.hold_funds(
        inmate_id=inmate.pk,
        amount_fen=8_000,
        reason="hold",
        staff_id=staff.pk,
        idempotency_key=key(),
    )
    with pytest.raises(errors.InsufficientFunds):
        post_purchase(inmate.pk, 2_001)
    services.release_hold(
        inmate_id=inmate.pk,
        amount_fen=8_000,
        reason="cleared",
        staff_id=staff.pk,
        idempotency_key=key(),
    )
    post_purchase(inmate.pk, 10_000)
    assert inmate_balance(inmate=inmate).spendable_fen == 0


def test_releasing_a_hold_cannot_push_spendable_over_the_cap(staff):
    from tests.factories import FacilityFactory

    inmate = InmateFactory(facility=FacilityFactory(balance_cap_fen=10_000))
    deposit(inmate, 10_000)
    purchase = post_purchase(inmate.pk, 5_000)
    deposit(inmate, 5_000)
    services.refund_purchase(
        idempotency_scope="system", purchase_id=purchase.pk, amount_fen=5_000, idempotency_key=key()
    )
    assert inmate_balance(inmate=inmate).held_fen == 5_000
    with pytest.raises(errors.BalanceCapExceeded):
        services.release_hold(
            inmate_id=inmate.pk, amount_fen=1, reason="r", staff_id=staff.pk, idempotency_key=key()
        )


def test_a_debit_adjustment_cannot_overdraw(staff, ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    before = ledger_snapshot()
    with pytest.raises(errors.InsufficientFunds):
        services.adjust_balance(
            inmate_id=inmate.pk,
            amount_fen=-1_001,
            reason="fine",
            staff_id=staff.pk,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before


def test_a_transaction_is_reversed_at_most_once(staff):
    inmate = InmateFactory()
    credit = services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=100,
        reason="r",
        staff_id=staff.pk,
        approved_by_id=staff_at(inmate.facility, may_approve=True).pk,
        idempotency_key=key(),
    )
    services.reverse_transaction(
        transaction_id=credit.pk, reason="r", staff_id=staff.pk, idempotency_key=key()
    )
    with pytest.raises(errors.NotReversible):
        services.reverse_transaction(
            transaction_id=credit.pk, reason="r", staff_id=staff.pk, idempotency_key=key()
        )


def test_deposits_and_purchases_are_not_reversed_but_refunded(staff):
    inmate = InmateFactory()
    credited = deposit(inmate, 1_000)
    purchase = post_purchase(inmate.pk, 10)
    for transaction in (credited.transaction, purchase):
        with pytest.raises(errors.NotReversible):
            services.reverse_transaction(
                transaction_id=transaction.pk, reason="r", staff_id=staff.pk, idempotency_key=key()
            )


def test_reversing_a_spent_credit_is_refused(staff, ledger_snapshot):
    inmate = InmateFactory()
    credit = services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=1_000,
        reason="r",
        staff_id=staff.pk,
        approved_by_id=staff_at(inmate.facility, may_approve=True).pk,
        idempotency_key=key(),
    )
    post_purchase(inmate.pk, 600)
    before = ledger_snapshot()
    with pytest.raises(errors.InsufficientFunds):
        services.reverse_transaction(
            transaction_id=credit.pk, reason="r", staff_id=staff.pk, idempotency_key=key()
        )
    assert ledger_snapshot() == before


def test_a_frozen_account_still_receives_refunds_and_paid_deposits(staff):
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    purchase = post_purchase(inmate.pk, 500)
    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=300, idempotency_key=key()
    )
    set_frozen(inmate, True)
    services.credit_deposit(deposit_id=reserved.pk)
    services.refund_purchase(
        idempotency_scope="system", purchase_id=purchase.pk, amount_fen=500, idempotency_key=key()
    )
    balance = inmate_balance(inmate=inmate)
    assert (balance.spendable_fen, balance.is_frozen) == (1_300, True)


def test_a_freeze_records_who_and_why_and_a_replay_returns_the_first_event(ledger_snapshot):
    inmate = InmateFactory()
    officer = staff_at(inmate.facility)
    first = services.set_account_frozen(
        inmate_id=inmate.pk,
        is_frozen=True,
        reason="contraband search",
        staff_id=officer.pk,
        idempotency_key="freeze-1",
    )
    again = services.set_account_frozen(
        inmate_id=inmate.pk,
        is_frozen=True,
        reason="contraband search",
        staff_id=officer.pk,
        idempotency_key="freeze-1",
    )
    assert again.pk == first.pk
    assert (first.kind, first.reason, first.created_by_id) == (
        "frozen",
        "contraband search",
        officer.pk,
    )
    assert AccountEvent.objects.filter(inmate=inmate).count() == 1
    before = ledger_snapshot()
    with pytest.raises(errors.ValidationFailed, match="already frozen"):
        services.set_account_frozen(
            inmate_id=inmate.pk,
            is_frozen=True,
            reason="again",
            staff_id=officer.pk,
            idempotency_key="freeze-2",
        )
    with pytest.raises(errors.ValidationFailed):
        services.set_account_frozen(
            inmate_id=inmate.pk,
            is_frozen=False,
            reason=" ",
            staff_id=officer.pk,
            idempotency_key="unfreeze",
        )
    assert ledger_snapshot() == before
