"""Worked examples: fixed money scenarios with every journal entry spelled out. They double as
documentation of what each operation writes. Signs: a positive entry adds to the account;
a clearing account goes negative by what the payment provider owes the facility."""

import pytest

from facilities import services as facility_services
from ledger import services
from ledger.models import Entry, Transaction
from ledger.selectors import account_balance_fen, inmate_balance
from tests.factories import FacilityFactory, InmateFactory

from .helpers import key, kiosk_order, post_purchase, staff_at

pytestmark = pytest.mark.django_db


def entries(transaction: Transaction) -> dict[str, int]:
    """{"<owner> <kind>": amount} for one transaction, owner being "inmate" or "facility"."""
    return {
        f"{'inmate' if e.account.inmate_id else 'facility'} {e.account.kind}": e.amount_fen
        for e in Entry.objects.filter(transaction=transaction).select_related("account")
    }


@pytest.fixture
def facility():
    # A fee of ¥2.00 plus 1% on top of each deposit, paid by the family.
    return FacilityFactory(deposit_fee_fixed_fen=200, deposit_fee_rate_bp=100)


def test_a_family_deposit_with_a_fee(facility, assert_ledger_consistent):
    inmate = InmateFactory(facility=facility)
    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=50_000,
        idempotency_key=key(),
    )
    # ¥500.00 for the inmate; the family pays ¥500.00 + ¥2.00 + ¥5.00 = ¥507.00.
    assert (reserved.amount_fen, reserved.fee_fen) == (50_000, 700)
    # Reserved: nothing in the journal yet, but the room under both caps is taken.
    assert not Transaction.objects.exists()
    balance = inmate_balance(inmate=inmate)
    assert (balance.pending_fen, balance.month_reserved_fen) == (50_000, 50_000)

    credited = services.credit_deposit(deposit_id=reserved.pk)
    assert entries(credited.transaction) == {
        "facility clearing": -50_700,  # the provider owes us what the family paid
        "inmate spendable": 50_000,
        "facility fees": 700,  # the fee never counts against the inmate's caps
    }
    balance = inmate_balance(inmate=inmate)
    assert (balance.spendable_fen, balance.pending_fen) == (50_000, 0)
    assert (balance.month_received_fen, balance.month_reserved_fen) == (50_000, 0)
    assert_ledger_consistent()


def test_spending_at_the_kiosk(facility, assert_ledger_consistent):
    inmate = InmateFactory(facility=facility)
    services.credit_deposit(
        deposit_id=services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=10_000,
            idempotency_key=key(),
        ).pk
    )
    purchase = kiosk_order(inmate, 2_350).purchase  # noodles x5 at the kiosk
    assert entries(purchase) == {"inmate spendable": -2_350, "facility sales": 2_350}
    assert inmate_balance(inmate=inmate).spendable_fen == 7_650
    sales = facility.ledger_accounts.get(kind="sales")
    assert account_balance_fen(account=sales) == 2_350
    assert_ledger_consistent()


def test_a_refund_that_would_break_the_cap_goes_to_held_money(assert_ledger_consistent):
    facility = FacilityFactory(balance_cap_fen=10_000, monthly_cap_fen=10_000)
    inmate = InmateFactory(facility=facility)
    services.credit_deposit(
        deposit_id=services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=10_000,
            idempotency_key=key(),
        ).pk
    )  # at the cap
    purchase = post_purchase(inmate.pk, 4_000)
    staff, approver = staff_at(inmate.facility), staff_at(inmate.facility, may_approve=True)
    services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=3_000,
        reason="wage credit",
        staff_id=staff.pk,
        approved_by_id=approver.pk,
        idempotency_key=key(),
    )
    # Spendable 9,000; a 4,000 refund has room for only 1,000 under the 10,000 cap.
    refund = services.refund_purchase(
        idempotency_scope="system",
        purchase_id=purchase.pk,
        amount_fen=4_000,
        idempotency_key=key(),
        reason="damaged goods",
    )
    assert entries(refund) == {
        "facility sales": -4_000,
        "inmate spendable": 1_000,
        "inmate held": 3_000,
    }
    balance = inmate_balance(inmate=inmate)
    assert (balance.spendable_fen, balance.held_fen) == (10_000, 3_000)
    assert_ledger_consistent()


def test_release_pays_out_spendable_and_held_money_and_closes_the_accounts(
    facility, assert_ledger_consistent
):
    inmate = InmateFactory(facility=facility)
    staff = staff_at(inmate.facility)
    services.credit_deposit(
        deposit_id=services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=20_000,
            idempotency_key=key(),
        ).pk
    )
    services.hold_funds(
        inmate_id=inmate.pk,
        amount_fen=5_000,
        reason="damage claim pending",
        staff_id=staff.pk,
        idempotency_key=key(),
    )
    unpaid = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=3_000,
        idempotency_key=key(),
    )

    facility_services.release_inmate(inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key=key())

    payout = Transaction.objects.get(kind=Transaction.Kind.PAYOUT)
    assert entries(payout) == {
        "inmate spendable": -15_000,
        "inmate held": -5_000,
        "facility payouts": 20_000,
    }
    unpaid.refresh_from_db()
    assert unpaid.status == "expired"  # its room under the caps is given back
    balance = inmate_balance(inmate=inmate)
    assert (balance.spendable_fen, balance.held_fen, balance.pending_fen) == (0, 0, 0)
    assert balance.is_closed and balance.month_reserved_fen == 0
    assert_ledger_consistent()


def test_a_staff_mistake_is_corrected_by_a_reversal(facility, assert_ledger_consistent):
    inmate = InmateFactory(facility=facility)
    staff = staff_at(inmate.facility)
    mistake = services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=1_500,
        reason="typo: meant 15.00",
        staff_id=staff.pk,
        approved_by_id=staff_at(inmate.facility, may_approve=True).pk,
        idempotency_key=key(),
    )
    reversal = services.reverse_transaction(
        transaction_id=mistake.pk, reason="typo", staff_id=staff.pk, idempotency_key=key()
    )
    assert entries(mistake) == {"facility adjustments": -1_500, "inmate spendable": 1_500}
    assert entries(reversal) == {"facility adjustments": 1_500, "inmate spendable": -1_500}
    assert reversal.reverses_id == mistake.pk
    assert inmate_balance(inmate=inmate).spendable_fen == 0
    assert_ledger_consistent()
