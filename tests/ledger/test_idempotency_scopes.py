"""Idempotency keys live in scopes and never collide (invariant 6).

A replay of an inmate's release or transfer returns the first result, the ledger closing and
moving included; the same key for a different request is refused. A key is unique per scope
(who chose it), so a client's key can never take one the server derives in the system scope.
Every accepted client key fits its column, and the request fingerprint covers every parameter.
"""

import pytest

from commissary import errors
from facilities import services as facility_services
from facilities.models import Inmate
from ledger import services
from ledger.models import Account, AccountEvent, Deposit, Transaction
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit, key, kiosk_of, kiosk_order, post_purchase

pytestmark = pytest.mark.django_db


def _money(inmate):
    return dict(Account.objects.filter(inmate=inmate).values_list("kind", "balance_fen"))


# --- release ----------------------------------------------------------------------------


def test_a_replayed_ledger_closing_returns_the_first_closing_and_pays_out_once():
    inmate = InmateFactory()
    deposit(inmate, 4_200)
    staff = StaffFactory(facilities=[inmate.facility])

    first = services.close_inmate_ledger(
        inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key="release-1"
    )
    again = services.close_inmate_ledger(
        inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key="release-1"
    )

    assert (again.pk, again.transaction_id) == (first.pk, first.transaction_id)
    assert not first.is_replay and again.is_replay
    assert Transaction.objects.filter(kind=Transaction.Kind.PAYOUT).count() == 1
    assert first.transaction.entries.get(account__kind=Account.Kind.PAYOUTS).amount_fen == 4_200
    assert AccountEvent.objects.filter(kind=AccountEvent.Kind.CLOSED).count() == 1


def test_a_ledger_closing_key_reused_for_another_inmate_is_refused_and_closes_nothing():
    inmate = InmateFactory()
    other = InmateFactory(facility=inmate.facility)
    deposit(other, 1_000)
    staff = StaffFactory(facilities=[inmate.facility])
    services.close_inmate_ledger(inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key="r")

    with pytest.raises(errors.IdempotencyConflict):
        services.close_inmate_ledger(inmate_id=other.pk, staff_id=staff.pk, idempotency_key="r")

    assert not Account.objects.filter(inmate=other, is_closed=True).exists()
    assert _money(other) == {"spendable": 1_000, "held": 0}


def test_a_replayed_release_returns_the_released_inmate_and_a_different_one_is_refused():
    inmate = InmateFactory()
    deposit(inmate, 3_000)
    other = InmateFactory(facility=inmate.facility)
    staff = StaffFactory(facilities=[inmate.facility])

    first = facility_services.release_inmate(
        inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key="out-1"
    )
    again = facility_services.release_inmate(
        inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key="out-1"
    )

    assert again.pk == first.pk and again.status == Inmate.Status.RELEASED
    assert again.released_at == first.released_at
    assert Transaction.objects.filter(kind=Transaction.Kind.PAYOUT).count() == 1
    # The same key, by the same staff member, for another inmate: refused, nothing changes.
    with pytest.raises(errors.IdempotencyConflict):
        facility_services.release_inmate(
            inmate_id=other.pk, staff_id=staff.pk, idempotency_key="out-1"
        )
    other.refresh_from_db()
    assert other.status == Inmate.Status.ACTIVE and other.card_token
    # A fresh key for the released inmate is a new request, refused as such.
    with pytest.raises(errors.InmateReleased):
        facility_services.release_inmate(
            inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key="out-2"
        )


# --- transfer ---------------------------------------------------------------------------


def test_a_replayed_ledger_move_returns_the_first_move_and_moves_excess_once():
    inmate = InmateFactory()
    deposit(inmate, 80_000)
    small = FacilityFactory(balance_cap_fen=50_000)
    staff = StaffFactory(facilities=[inmate.facility, small])
    origin = inmate.facility_id

    first = services.move_inmate_ledger(
        inmate_id=inmate.pk, to_facility_id=small.pk, staff_id=staff.pk, idempotency_key="m"
    )
    again = services.move_inmate_ledger(
        inmate_id=inmate.pk, to_facility_id=small.pk, staff_id=staff.pk, idempotency_key="m"
    )

    assert (again.pk, again.transaction_id, again.from_facility_id) == (
        first.pk,
        first.transaction_id,
        origin,
    )
    assert again.is_replay
    assert Transaction.objects.filter(kind=Transaction.Kind.TRANSFER_EXCESS).count() == 1
    assert _money(inmate) == {"spendable": 50_000, "held": 30_000}


def test_a_ledger_move_key_reused_for_another_destination_is_refused_and_moves_nothing():
    inmate = InmateFactory()
    first_stop, second_stop = FacilityFactory(), FacilityFactory()
    staff = StaffFactory(facilities=[inmate.facility, first_stop, second_stop])
    services.move_inmate_ledger(
        inmate_id=inmate.pk, to_facility_id=first_stop.pk, staff_id=staff.pk, idempotency_key="m"
    )

    with pytest.raises(errors.IdempotencyConflict):
        services.move_inmate_ledger(
            inmate_id=inmate.pk,
            to_facility_id=second_stop.pk,
            staff_id=staff.pk,
            idempotency_key="m",
        )

    assert set(Account.objects.filter(inmate=inmate).values_list("facility_id", flat=True)) == {
        first_stop.pk
    }


def test_a_replayed_transfer_returns_the_inmate_where_the_first_left_it():
    inmate = InmateFactory()
    deposit(inmate, 60_000)
    there = FacilityFactory(balance_cap_fen=50_000)
    elsewhere = FacilityFactory()
    staff = StaffFactory(facilities=[inmate.facility, there, elsewhere])

    first = facility_services.transfer_inmate(
        inmate_id=inmate.pk, to_facility=there, staff_id=staff.pk, idempotency_key="t-1"
    )
    again = facility_services.transfer_inmate(
        inmate_id=inmate.pk, to_facility=there, staff_id=staff.pk, idempotency_key="t-1"
    )

    assert first.facility_id == again.facility_id == there.pk
    assert AccountEvent.objects.filter(kind=AccountEvent.Kind.MOVED).count() == 1
    assert _money(inmate) == {"spendable": 50_000, "held": 10_000}
    with pytest.raises(errors.IdempotencyConflict):
        facility_services.transfer_inmate(
            inmate_id=inmate.pk, to_facility=elsewhere, staff_id=staff.pk, idempotency_key="t-1"
        )
    inmate.refresh_from_db()
    assert inmate.facility_id == there.pk
    assert AccountEvent.objects.filter(kind=AccountEvent.Kind.MOVED).count() == 1


# --- scopes -----------------------------------------------------------------------------


def test_a_depositor_key_cannot_take_the_key_the_server_credits_a_deposit_under():
    inmate = InmateFactory()
    paid = services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=500, idempotency_key="a"
    )
    # Clients who guess the server's key for crediting that deposit and use it first: a
    # depositor for a deposit of its own, a kiosk for a purchase (a journal transaction, like
    # the credit).
    server_key = f"deposit-credit:{paid.pk}"
    squatter = services.reserve_deposit(
        idempotency_scope="depositor:2",
        inmate_id=inmate.pk,
        amount_fen=700,
        idempotency_key=server_key,
    )
    services.credit_deposit(deposit_id=squatter.pk)
    kiosk_order(inmate, 200, idempotency_key=server_key)

    credited = services.credit_deposit(deposit_id=paid.pk)

    assert credited.status == Deposit.Status.CREDITED
    credit = Transaction.objects.get(deposit=paid)
    assert (credit.idempotency_scope, credit.idempotency_key) == (services.SYSTEM_SCOPE, server_key)
    assert _money(inmate) == {"spendable": 1_000, "held": 0}


def test_the_same_key_from_two_kiosks_is_two_purchases():
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    first = kiosk_order(inmate, 300, idempotency_key="order-1", device=kiosk_of(inmate.facility))
    second = kiosk_order(
        inmate,
        300,
        idempotency_key="order-1",
        device=facility_services.register_kiosk_device(facility=inmate.facility, name="K2")[0],
    )
    assert first.pk != second.pk
    assert _money(inmate) == {"spendable": 400, "held": 0}


@pytest.mark.parametrize("scope", ["", "public", "kiosk:", "kiosk:0", "depositor:x", "system "])
def test_a_key_in_no_known_scope_is_refused(scope, ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    before = ledger_snapshot()
    with pytest.raises(errors.ValidationFailed):
        services.reserve_deposit(
            idempotency_scope=scope, inmate_id=inmate.pk, amount_fen=100, idempotency_key=key()
        )
    assert ledger_snapshot() == before


# --- key length -------------------------------------------------------------------------


def test_a_128_character_client_key_is_accepted_and_its_deposit_credited():
    inmate = InmateFactory()
    longest = "k" * services.MAX_CLIENT_KEY_LENGTH
    assert len(longest) == 128

    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=900,
        idempotency_key=longest,
    )
    credited = services.credit_deposit(deposit_id=reserved.pk)

    assert credited.status == Deposit.Status.CREDITED
    assert Deposit.objects.get(pk=reserved.pk).idempotency_key == longest
    assert _money(inmate) == {"spendable": 900, "held": 0}


def test_a_129_character_client_key_is_refused_and_reserves_nothing(ledger_snapshot):
    inmate = InmateFactory()
    before = ledger_snapshot()
    with pytest.raises(errors.ValidationFailed, match="1 to 128"):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=900,
            idempotency_key="k" * 129,
        )
    with pytest.raises(errors.ValidationFailed, match="1 to 128"):
        kiosk_order(inmate, 1, idempotency_key="k" * 129)
    assert ledger_snapshot() == before


# --- fingerprints -----------------------------------------------------------------------


def test_a_refund_key_reused_by_another_staff_member_is_refused(ledger_snapshot):
    inmate = InmateFactory()
    deposit(inmate, 5_000)
    purchase = post_purchase(inmate.pk, 2_000)
    clerk, other_clerk = StaffFactory(), StaffFactory()
    first = services.refund_purchase(
        purchase_id=purchase.pk,
        amount_fen=500,
        idempotency_key="refund-1",
        idempotency_scope="system",
        reason="damaged",
        staff_id=clerk.pk,
    )
    before = ledger_snapshot()

    with pytest.raises(errors.IdempotencyConflict):
        services.refund_purchase(
            purchase_id=purchase.pk,
            amount_fen=500,
            idempotency_key="refund-1",
            idempotency_scope="system",
            reason="damaged",
            staff_id=other_clerk.pk,
        )

    assert ledger_snapshot() == before
    assert Transaction.objects.get(refund_of=purchase).created_by_id == clerk.pk
    again = services.refund_purchase(
        purchase_id=purchase.pk,
        amount_fen=500,
        idempotency_key="refund-1",
        idempotency_scope="system",
        reason="damaged",
        staff_id=clerk.pk,
    )
    assert again.pk == first.pk
