"""Bad input gets its domain error and changes nothing; replays are idempotent (invariant 6)."""

import datetime as dt

import pytest
from django.utils import timezone

from commissary import errors
from facilities import services as facility_services
from ledger import services
from ledger.models import Deposit, Transaction
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

from .helpers import deposit, key, kiosk_order, post_purchase, set_frozen, staff_at

pytestmark = pytest.mark.django_db

BAD_AMOUNTS = [0, -1, -100_000, 1.5, 100.0, "100", None, True, 10**13, 2**70]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_a_bad_deposit_amount_is_refused_and_changes_nothing(amount, ledger_snapshot):
    inmate = InmateFactory()
    before = ledger_snapshot()
    with pytest.raises(errors.InvalidAmount):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=amount,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_a_bad_purchase_amount_is_refused_and_changes_nothing(amount, ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    before = ledger_snapshot()
    with pytest.raises(errors.InvalidAmount):
        post_purchase(inmate.pk, amount)
    assert ledger_snapshot() == before


def test_an_unknown_inmate_is_refused(ledger_snapshot):
    InmateFactory()
    before = ledger_snapshot()
    with pytest.raises(errors.InmateNotFound):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=987654321,
            amount_fen=100,
            idempotency_key=key(),
        )
    with pytest.raises(errors.InmateNotFound):
        post_purchase(987654321, 100)
    assert ledger_snapshot() == before


def test_a_released_inmate_takes_no_deposit_and_no_purchase(ledger_snapshot):
    inmate = InmateFactory()
    facility_services.release_inmate(
        inmate_id=inmate.pk, staff_id=None, idempotency_scope="system", idempotency_key=key()
    )
    before = ledger_snapshot()
    with pytest.raises(errors.InmateReleased):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=100,
            idempotency_key=key(),
        )
    with pytest.raises(errors.InmateReleased):
        post_purchase(inmate.pk, 100)
    assert ledger_snapshot() == before


def test_a_frozen_account_can_neither_spend_nor_take_deposits(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    set_frozen(inmate, True)
    before = ledger_snapshot()
    with pytest.raises(errors.AccountFrozen):
        post_purchase(inmate.pk, 100)
    with pytest.raises(errors.AccountFrozen):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=100,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before
    set_frozen(inmate, False)
    post_purchase(inmate.pk, 100)


def test_a_purchase_over_the_spendable_balance_is_refused(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    before = ledger_snapshot()
    with pytest.raises(errors.InsufficientFunds):
        post_purchase(inmate.pk, 10_001)
    assert ledger_snapshot() == before


@pytest.mark.parametrize("bad_key", ["", "   ", None, "x" * 201, 42])
def test_a_missing_or_malformed_idempotency_key_is_refused(bad_key, ledger_snapshot):
    inmate = InmateFactory()
    before = ledger_snapshot()
    with pytest.raises(errors.ValidationFailed):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=100,
            idempotency_key=bad_key,
        )
    assert ledger_snapshot() == before


def test_an_unknown_payment_provider_is_refused(ledger_snapshot):
    inmate = InmateFactory()
    before = ledger_snapshot()
    with pytest.raises(errors.ValidationFailed):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=100,
            idempotency_key=key(),
            provider="nonexistent",
        )
    assert ledger_snapshot() == before


def test_a_replayed_deposit_returns_the_first_and_reserves_once():
    inmate = InmateFactory()
    first = services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=700, idempotency_key="same"
    )
    again = services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=700, idempotency_key="same"
    )
    assert again.pk == first.pk and again.reference == first.reference
    assert Deposit.objects.count() == 1
    assert inmate.ledger_accounts.get(kind="spendable").pending_fen == 700


def test_a_replayed_purchase_returns_the_first_and_debits_once():
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    first = kiosk_order(inmate, 600, idempotency_key="buy")
    # The replay would no longer fit (400 left), yet it returns the first result.
    again = kiosk_order(inmate, 600, idempotency_key="buy")
    assert again.pk == first.pk
    assert inmate.ledger_accounts.get(kind="spendable").balance_fen == 400


def test_a_key_reused_for_a_different_request_is_refused_and_changes_nothing(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    kiosk_order(inmate, 100, idempotency_key="k")
    before = ledger_snapshot()
    with pytest.raises(errors.IdempotencyConflict):
        kiosk_order(inmate, 101, idempotency_key="k")
    other = InmateFactory(facility=inmate.facility)
    deposit(other, 1_000)
    before = ledger_snapshot()
    with pytest.raises(errors.IdempotencyConflict):
        kiosk_order(other, 100, idempotency_key="k")
    assert ledger_snapshot() == before


def test_crediting_a_deposit_twice_credits_it_once():
    inmate = InmateFactory()
    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=500, idempotency_key=key()
    )
    services.credit_deposit(deposit_id=reserved.pk)
    services.credit_deposit(deposit_id=reserved.pk)
    assert Transaction.objects.filter(deposit=reserved).count() == 1
    assert inmate.ledger_accounts.get(kind="spendable").balance_fen == 500


def test_a_failed_deposit_cannot_be_credited(ledger_snapshot):
    inmate = InmateFactory()
    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=500, idempotency_key=key()
    )
    services.release_deposit(deposit_id=reserved.pk, status="failed")
    before = ledger_snapshot()
    with pytest.raises(errors.DepositNotPending):
        services.credit_deposit(deposit_id=reserved.pk)
    assert ledger_snapshot() == before


def test_a_refund_larger_than_what_is_left_of_the_purchase_is_refused(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    purchase = post_purchase(inmate.pk, 600)
    services.refund_purchase(
        idempotency_scope="system", purchase_id=purchase.pk, amount_fen=400, idempotency_key=key()
    )
    before = ledger_snapshot()
    with pytest.raises(errors.RefundExceedsPurchase):
        services.refund_purchase(
            idempotency_scope="system",
            purchase_id=purchase.pk,
            amount_fen=201,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before


def test_only_purchases_can_be_refunded():
    inmate = InmateFactory()
    credited = deposit(inmate, 1_000)
    with pytest.raises(errors.TransactionNotFound):
        services.refund_purchase(
            idempotency_scope="system",
            purchase_id=credited.transaction.pk,
            amount_fen=1,
            idempotency_key=key(),
        )


def test_a_large_debit_needs_a_second_trust_officer_of_the_facility(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 100_000)
    deposit(inmate, 10_000, now=timezone.now() - dt.timedelta(days=40))
    staff = staff_at(inmate.facility, may_approve=True)
    family = StaffFactory(is_staff=False, may_approve=True, facilities=[inmate.facility])
    elsewhere = staff_at(FacilityFactory(), may_approve=True)
    not_an_approver = staff_at(inmate.facility)
    inactive = StaffFactory(is_active=False, facilities=[inmate.facility], may_approve=True)
    before = ledger_snapshot()
    for approver in (None, staff, family, elsewhere, not_an_approver, inactive):
        with pytest.raises(errors.ApprovalRequired):
            services.adjust_balance(
                inmate_id=inmate.pk,
                amount_fen=-50_001,
                reason="correction",
                staff_id=staff.pk,
                approved_by_id=approver and approver.pk,
                idempotency_key=key(),
            )
    assert ledger_snapshot() == before
    services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=-50_000,  # at the threshold: one staff member is enough
        reason="correction",
        staff_id=staff.pk,
        idempotency_key=key(),
    )
    services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=-50_001,
        reason="correction",
        staff_id=staff.pk,
        approved_by_id=staff_at(inmate.facility, may_approve=True).pk,
        idempotency_key=key(),
    )


def test_every_credit_needs_a_second_trust_officer_and_a_family_account_cannot_approve(
    ledger_snapshot,
):
    inmate = InmateFactory()
    staff = staff_at(inmate.facility)
    family = StaffFactory(is_staff=False, may_approve=True, facilities=[inmate.facility])
    before = ledger_snapshot()
    for approver in (None, staff, family):
        with pytest.raises(errors.ApprovalRequired):
            services.adjust_balance(
                inmate_id=inmate.pk,
                amount_fen=400_000,
                reason="credit",
                staff_id=staff.pk,
                approved_by_id=approver and approver.pk,
                idempotency_key=key(),
            )
    assert ledger_snapshot() == before


def test_staff_of_another_facility_cannot_move_an_inmates_money(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    outsider = staff_at(FacilityFactory(), may_approve=True)
    before = ledger_snapshot()
    with pytest.raises(errors.NotPermitted):
        services.hold_funds(
            inmate_id=inmate.pk,
            amount_fen=100,
            reason="hold",
            staff_id=outsider.pk,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before


def test_an_adjustment_needs_a_reason(ledger_snapshot):
    inmate = InmateFactory()
    before = ledger_snapshot()
    with pytest.raises(errors.ValidationFailed):
        services.adjust_balance(
            inmate_id=inmate.pk,
            amount_fen=100,
            reason=" ",
            staff_id=staff_at(inmate.facility).pk,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before
