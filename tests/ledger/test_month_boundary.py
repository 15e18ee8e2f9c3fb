"""Invariant 4's month is the facility's: Asia/Shanghai is UTC+8, so for the last eight hours
of a Shanghai month UTC is still on the previous day, and vice versa at the start."""

import datetime as dt

import pytest
import time_machine

from commissary import errors
from ledger import services
from ledger.models import MonthlyPeriod
from tests.factories import FacilityFactory, InmateFactory

from .helpers import SHANGHAI, deposit, key

pytestmark = pytest.mark.django_db

LAST_SECOND_OF_JANUARY = dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=SHANGHAI)
FIRST_SECOND_OF_FEBRUARY = dt.datetime(2026, 2, 1, 0, 0, 0, tzinfo=SHANGHAI)


def test_a_deposit_at_235959_on_31_january_counts_in_january():
    inmate = InmateFactory()
    with time_machine.travel(LAST_SECOND_OF_JANUARY, tick=False):
        deposit(inmate, 10_000)
    period = MonthlyPeriod.objects.get(inmate=inmate)
    assert period.month == dt.date(2026, 1, 1)
    assert period.received_fen == 10_000


def test_a_deposit_at_midnight_on_1_february_counts_in_february_while_utc_is_still_january():
    inmate = InmateFactory()
    with time_machine.travel(FIRST_SECOND_OF_FEBRUARY, tick=False):
        assert dt.datetime.now(dt.UTC).date() == dt.date(2026, 1, 31)
        deposit(inmate, 10_000)
    assert MonthlyPeriod.objects.get(inmate=inmate).month == dt.date(2026, 2, 1)


def test_a_full_january_does_not_block_february_one_second_later():
    inmate = InmateFactory()
    with time_machine.travel(LAST_SECOND_OF_JANUARY, tick=False):
        deposit(inmate, 100_000)
        with pytest.raises(errors.MonthlyCapExceeded):
            services.reserve_deposit(
                idempotency_scope="depositor:1",
                inmate_id=inmate.pk,
                amount_fen=1,
                idempotency_key=key(),
            )
    with time_machine.travel(FIRST_SECOND_OF_FEBRUARY, tick=False):
        deposit(inmate, 100_000)
    received = dict(
        MonthlyPeriod.objects.filter(inmate=inmate).values_list("month", "received_fen")
    )
    assert received == {dt.date(2026, 1, 1): 100_000, dt.date(2026, 2, 1): 100_000}


def test_a_deposit_reserved_in_january_and_credited_in_february_counts_in_january():
    inmate = InmateFactory()
    with time_machine.travel(LAST_SECOND_OF_JANUARY, tick=False):
        reserved = services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=100_000,
            idempotency_key=key(),
        )
    with time_machine.travel(FIRST_SECOND_OF_FEBRUARY, tick=False):
        services.credit_deposit(deposit_id=reserved.pk)
        deposit(inmate, 100_000)  # February has its own, untouched room
    received = dict(
        MonthlyPeriod.objects.filter(inmate=inmate).values_list("month", "received_fen")
    )
    assert received == {dt.date(2026, 1, 1): 100_000, dt.date(2026, 2, 1): 100_000}


def test_each_facility_uses_its_own_timezone():
    # 2026-01-31 20:00 UTC is already February in Shanghai but still January in New York.
    instant = dt.datetime(2026, 1, 31, 20, 0, tzinfo=dt.UTC)
    shanghai = InmateFactory(facility=FacilityFactory(timezone="Asia/Shanghai"))
    new_york = InmateFactory(facility=FacilityFactory(timezone="America/New_York"))
    with time_machine.travel(instant, tick=False):
        deposit(shanghai, 5_000)
        deposit(new_york, 5_000)
    assert MonthlyPeriod.objects.get(inmate=shanghai).month == dt.date(2026, 2, 1)
    assert MonthlyPeriod.objects.get(inmate=new_york).month == dt.date(2026, 1, 1)
