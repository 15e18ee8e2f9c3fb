"""Intake, transfer and release keep one ledger per inmate; policy changes keep the caps
honest; kiosk keys are stored only hashed."""

import pytest

from commissary import errors
from facilities import services
from facilities.models import Inmate, KioskDevice, hash_device_key
from ledger import services as ledger_services
from ledger.models import Account, MonthlyPeriod, Transaction
from ledger.selectors import inmate_balance
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db


def test_intake_opens_empty_spendable_and_held_accounts_carrying_the_cap():
    facility = FacilityFactory(balance_cap_fen=300_000)
    inmate = services.intake_inmate(
        facility=facility, inmate_number=" B-17 ", surname="Li", pin="2468"
    )
    accounts = {a.kind: a for a in Account.objects.filter(inmate=inmate)}
    assert set(accounts) == {"spendable", "held"}
    assert accounts["spendable"].balance_fen == accounts["held"].balance_fen == 0
    assert accounts["spendable"].balance_cap_fen == 300_000
    assert inmate.inmate_number == "B-17" and inmate.check_pin("2468")
    assert not inmate.check_pin("2469") and "2468" not in inmate.pin_hash


def test_an_inmate_number_is_unique_per_facility_only():
    first = InmateFactory(inmate_number="A1")
    with pytest.raises(errors.ValidationFailed, match="already in use"):
        services.intake_inmate(facility=first.facility, inmate_number="A1", surname="X", pin="1111")
    services.intake_inmate(facility=FacilityFactory(), inmate_number="A1", surname="X", pin="1111")
    assert Inmate.objects.filter(inmate_number="A1").count() == 2


@pytest.mark.parametrize("pin", ["123", "abcd", "123456789", ""])
def test_a_pin_is_four_to_eight_digits(pin):
    with pytest.raises(errors.ValidationFailed):
        services.intake_inmate(facility=FacilityFactory(), inmate_number="A", surname="X", pin=pin)
    assert not Inmate.objects.exists()


def test_transfer_keeps_one_ledger_and_moves_money_over_the_new_cap_to_held(
    assert_ledger_consistent,
):
    inmate = InmateFactory()
    deposit(inmate, 80_000)
    small = FacilityFactory(balance_cap_fen=50_000, monthly_cap_fen=60_000)
    accounts_before = set(Account.objects.filter(inmate=inmate).values_list("id", flat=True))

    services.transfer_inmate(
        inmate_id=inmate.pk,
        to_facility=small,
        staff_id=None,
        idempotency_scope="system",
        idempotency_key=key(),
    )

    inmate.refresh_from_db()
    assert inmate.facility == small
    assert (
        set(Account.objects.filter(inmate=inmate).values_list("id", flat=True)) == accounts_before
    )
    balance = inmate_balance(inmate=inmate)
    assert (balance.spendable_fen, balance.held_fen, balance.balance_cap_fen) == (
        50_000,
        30_000,
        50_000,
    )
    # This month already saw 80,000 arrive; the period keeps the larger cap, so no more fits.
    assert MonthlyPeriod.objects.get(inmate=inmate).cap_fen == 100_000
    with pytest.raises(errors.BalanceCapExceeded):
        ledger_services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=1,
            idempotency_key=key(),
        )
    assert_ledger_consistent()


def test_transfer_waits_for_deposits_in_flight():
    inmate = InmateFactory()
    ledger_services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=100, idempotency_key=key()
    )
    with pytest.raises(errors.ValidationFailed, match="awaiting payment"):
        services.transfer_inmate(
            inmate_id=inmate.pk,
            to_facility=FacilityFactory(),
            staff_id=None,
            idempotency_scope="system",
            idempotency_key=key(),
        )


def test_release_marks_the_inmate_and_refuses_a_second_release(assert_ledger_consistent):
    inmate = InmateFactory()
    deposit(inmate, 4_200)
    services.release_inmate(inmate_id=inmate.pk, staff_id=StaffFactory().pk, idempotency_key=key())
    inmate.refresh_from_db()
    assert inmate.status == Inmate.Status.RELEASED and inmate.released_at is not None
    assert inmate.card_token is None  # the ID card no longer signs in
    payout = Transaction.objects.get(kind="payout", inmate=inmate)
    assert payout.entries.get(account__kind="payouts").amount_fen == 4_200
    with pytest.raises(errors.InmateReleased):
        services.release_inmate(
            inmate_id=inmate.pk, staff_id=None, idempotency_scope="system", idempotency_key=key()
        )
    assert_ledger_consistent()


def test_raising_caps_updates_the_ledger_rows_and_lowering_below_holdings_is_refused():
    inmate = InmateFactory()
    facility = inmate.facility
    services.update_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=200_000, balance_cap_fen=600_000
    )
    deposit(inmate, 150_000)
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_cap_fen == 600_000
    with pytest.raises(errors.InvalidPolicy):
        services.update_facility_caps(
            facility_id=facility.pk, monthly_cap_fen=100_000, balance_cap_fen=100_000
        )
    facility.refresh_from_db()
    assert facility.balance_cap_fen == 600_000


def test_a_kiosk_key_is_shown_once_and_stored_only_hashed():
    device, raw_key = services.register_kiosk_device(facility=FacilityFactory(), name="Block A")
    stored = KioskDevice.objects.get(pk=device.pk)
    assert stored.key_hash == hash_device_key(raw_key)
    assert raw_key not in (stored.key_hash, stored.key_prefix)
    services.revoke_kiosk_device(device_id=device.pk)
    stored.refresh_from_db()
    assert not stored.is_active and stored.revoked_at is not None
