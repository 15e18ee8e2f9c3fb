"""A facility's caps change through the ledger, under its inmates' locks (invariant 3).

Lowering the balance cap is refused while any open inmate's spendable + held + pending
deposits exceed the new cap; the refusal names them and changes nothing. Pending money counts:
a deposit awaiting payment may still be credited, and must then fit.
"""

import pytest

from commissary import errors
from facilities.models import Facility
from ledger import services
from ledger.models import Account, MonthlyPeriod
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db


def _caps(facility):
    facility = Facility.objects.get(pk=facility.pk)
    rows = Account.objects.filter(facility=facility, kind=Account.Kind.SPENDABLE)
    return (
        facility.monthly_cap_fen,
        facility.balance_cap_fen,
        sorted(rows.values_list("balance_cap_fen", flat=True)),
        sorted(MonthlyPeriod.objects.filter(facility=facility).values_list("cap_fen", flat=True)),
    )


def _reserve(inmate, amount_fen):
    return services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key(),
    )


def test_lowering_the_balance_cap_below_some_inmates_money_is_refused_naming_them(
    ledger_snapshot,
):
    facility = FacilityFactory(balance_cap_fen=100_000, monthly_cap_fen=200_000)
    staff = StaffFactory(facilities=[facility])
    spends = InmateFactory(facility=facility, inmate_number="S-1")  # spendable alone: over
    holds = InmateFactory(facility=facility, inmate_number="H-2")  # spendable + held: over
    waits = InmateFactory(facility=facility, inmate_number="P-3")  # spendable + pending: over
    under = InmateFactory(facility=facility, inmate_number="U-4")  # 50,000 exactly: fits
    deposit(spends, 60_000)
    deposit(holds, 30_000)
    services.hold_funds(
        inmate_id=holds.pk,
        amount_fen=25_000,
        reason="inquiry",
        staff_id=staff.pk,
        idempotency_key=key(),
    )
    deposit(holds, 25_000)  # spendable 30,000 + held 25,000
    deposit(waits, 40_000)
    _reserve(waits, 20_000)  # spendable 40,000 + pending 20,000
    deposit(under, 50_000)
    before, caps_before = ledger_snapshot(), _caps(facility)

    with pytest.raises(errors.InvalidPolicy) as refusal:
        services.change_facility_caps(
            facility_id=facility.pk, monthly_cap_fen=150_000, balance_cap_fen=50_000
        )

    named = refusal.value.message
    assert all(number in named for number in ("S-1", "H-2", "P-3")), named
    assert "U-4" not in named
    assert ledger_snapshot() == before
    assert _caps(facility) == caps_before == (200_000, 100_000, [100_000] * 4, [200_000] * 4)


def test_a_pending_deposit_counts_against_a_lowered_balance_cap():
    facility = FacilityFactory(balance_cap_fen=100_000, monthly_cap_fen=200_000)
    inmate = InmateFactory(facility=facility, inmate_number="P-1")
    deposit(inmate, 30_000)
    pending = _reserve(inmate, 20_000)

    # 30,000 spendable fits 40,000, but the 20,000 awaiting payment may still arrive.
    with pytest.raises(errors.InvalidPolicy, match="P-1"):
        services.change_facility_caps(
            facility_id=facility.pk, monthly_cap_fen=200_000, balance_cap_fen=40_000
        )
    assert _caps(facility)[:3] == (200_000, 100_000, [100_000])

    services.change_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=200_000, balance_cap_fen=50_000
    )
    assert _caps(facility)[:3] == (200_000, 50_000, [50_000])
    # The pending deposit still fits when it is paid, exactly at the new cap.
    services.credit_deposit(deposit_id=pending.pk)
    spendable = Account.objects.get(inmate=inmate, kind=Account.Kind.SPENDABLE)
    assert (spendable.balance_fen, spendable.pending_fen, spendable.balance_cap_fen) == (
        50_000,
        0,
        50_000,
    )
    with pytest.raises(errors.BalanceCapExceeded):
        _reserve(inmate, 1)


def test_a_released_inmate_does_not_block_a_lowered_cap():
    facility = FacilityFactory(balance_cap_fen=100_000)
    inmate = InmateFactory(facility=facility)
    deposit(inmate, 90_000)
    services.close_inmate_ledger(
        inmate_id=inmate.pk, staff_id=None, idempotency_scope="system", idempotency_key=key()
    )
    services.change_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=100_000, balance_cap_fen=10_000
    )
    assert Facility.objects.get(pk=facility.pk).balance_cap_fen == 10_000


def test_a_raised_monthly_cap_reaches_the_open_periods_and_a_lowered_one_waits():
    facility = FacilityFactory(balance_cap_fen=500_000, monthly_cap_fen=100_000)
    inmate = InmateFactory(facility=facility)
    deposit(inmate, 90_000)

    services.change_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=150_000, balance_cap_fen=500_000
    )
    assert _caps(facility)[3] == [150_000]
    deposit(inmate, 60_000)  # would have broken the old monthly cap

    services.change_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=120_000, balance_cap_fen=500_000
    )
    # This month already received 150,000: the open period keeps its cap, the next one won't.
    assert _caps(facility)[:2] == (120_000, 500_000)
    assert _caps(facility)[3] == [150_000]
