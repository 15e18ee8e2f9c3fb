"""Monthly rollover (issue: scheduled money work). The month is part of each period's key, so
the rollover is bookkeeping: late, twice or never, it cannot let money past the cap or block a
deposit. Each timezone's schedule fires at its own local 00:05 on the 1st."""

import datetime as dt

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from facilities import services as facility_services
from ledger import batch
from ledger.models import MonthlyPeriod, ScheduledRun
from ledger.schedules import ensure_schedules
from tests.factories import FacilityFactory, InmateFactory

from .helpers import SHANGHAI, deposit, key

pytestmark = pytest.mark.django_db

FEBRUARY_IN_SHANGHAI = dt.datetime(2026, 2, 1, 0, 5, 30, tzinfo=SHANGHAI)


def periods(facility, month):
    return MonthlyPeriod.objects.filter(inmate__facility=facility, month=month)


def test_rollover_opens_the_new_month_for_active_inmates_and_closes_the_old_one():
    facility = FacilityFactory()
    active = InmateFactory.create_batch(3, facility=facility)
    released = InmateFactory(facility=facility)
    deposit(active[0], 5_000, now=dt.datetime(2026, 1, 10, tzinfo=SHANGHAI))
    facility_services.release_inmate(
        inmate_id=released.pk, staff_id=None, idempotency_scope="system", idempotency_key=key()
    )

    run = batch.roll_over_facility(facility_id=facility.pk, now=FEBRUARY_IN_SHANGHAI)

    february = periods(facility, dt.date(2026, 2, 1))
    assert sorted(february.values_list("inmate_id", flat=True)) == [i.pk for i in active]
    assert set(february.values_list("received_fen", "reserved_fen", "cap_fen")) == {(0, 0, 100_000)}
    january = MonthlyPeriod.objects.get(inmate=active[0], month=dt.date(2026, 1, 1))
    assert january.closed_at is not None and january.received_fen == 5_000
    assert (run.status, run.counts) == ("succeeded", {"periods_closed": 1, "periods_opened": 3})
    assert run.month == dt.date(2026, 2, 1)


def test_a_second_rollover_changes_nothing():
    facility = FacilityFactory()
    InmateFactory.create_batch(2, facility=facility)
    batch.roll_over_facility(facility_id=facility.pk, now=FEBRUARY_IN_SHANGHAI)
    again = batch.roll_over_facility(facility_id=facility.pk, now=FEBRUARY_IN_SHANGHAI)
    assert again.counts == {"periods_closed": 0, "periods_opened": 0}
    assert periods(facility, dt.date(2026, 2, 1)).count() == 2


def test_deposits_need_no_rollover_and_a_late_rollover_keeps_their_period():
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    deposit(inmate, 100_000, now=dt.datetime(2026, 1, 31, 12, tzinfo=SHANGHAI))
    # The rollover never ran: February's first deposit creates February's period itself.
    deposit(inmate, 70_000, now=FEBRUARY_IN_SHANGHAI)
    # The late rollover runs on 3 February and leaves the money where it is.
    batch.roll_over_facility(
        facility_id=facility.pk, now=FEBRUARY_IN_SHANGHAI + dt.timedelta(days=2)
    )
    february = MonthlyPeriod.objects.get(inmate=inmate, month=dt.date(2026, 2, 1))
    assert (february.received_fen, february.closed_at) == (70_000, None)
    assert MonthlyPeriod.objects.filter(inmate=inmate).count() == 2


def test_rollover_is_chunked_and_records_progress():
    facility = FacilityFactory()
    InmateFactory.create_batch(7, facility=facility)
    run = batch.roll_over_facility(facility_id=facility.pk, now=FEBRUARY_IN_SHANGHAI, chunk_size=2)
    assert (run.progress_done, run.progress_total) == (7, 7)
    assert run.counts["periods_opened"] == 7


def test_a_killed_run_is_marked_abandoned_by_the_next_one():
    facility = FacilityFactory()
    stale = ScheduledRun.objects.create(
        kind="rollover",
        facility=facility,
        month=dt.date(2026, 2, 1),
        started_at=FEBRUARY_IN_SHANGHAI,
    )
    batch.roll_over_facility(facility_id=facility.pk, now=FEBRUARY_IN_SHANGHAI)
    stale.refresh_from_db()
    assert stale.status == "abandoned"


def _rollover_due(timezone_name, instant):
    task = PeriodicTask.objects.get(name=f"Monthly rollover ({timezone_name})")
    with time_machine.travel(instant, tick=False):
        # As the beat scheduler asks: due now, given it last ran an hour ago?
        return task.crontab.schedule.is_due(instant - dt.timedelta(hours=1)).is_due


def test_each_timezone_rolls_over_at_its_own_local_midnight():
    shanghai = FacilityFactory(timezone="Asia/Shanghai")
    new_york = FacilityFactory(timezone="America/New_York")
    InmateFactory(facility=shanghai)
    InmateFactory(facility=new_york)
    ensure_schedules()
    shanghai_0005 = dt.datetime(2026, 1, 31, 16, 5, 30, tzinfo=dt.UTC)  # 1 Feb 00:05:30 +08
    new_york_0005 = dt.datetime(2026, 2, 1, 5, 5, 30, tzinfo=dt.UTC)  # 1 Feb 00:05:30 -05

    assert _rollover_due("Asia/Shanghai", shanghai_0005)
    assert not _rollover_due("America/New_York", shanghai_0005)
    assert _rollover_due("America/New_York", new_york_0005)
    assert not _rollover_due("Asia/Shanghai", new_york_0005)

    with time_machine.travel(shanghai_0005, tick=False):
        batch.roll_over_periods(timezone_name="Asia/Shanghai")
    assert periods(shanghai, dt.date(2026, 2, 1)).count() == 1
    assert not periods(new_york, dt.date(2026, 2, 1)).exists()
    with time_machine.travel(new_york_0005, tick=False):
        batch.roll_over_periods(timezone_name="America/New_York")
    assert periods(new_york, dt.date(2026, 2, 1)).count() == 1


def test_a_new_facility_timezone_gets_its_own_rollover_schedule():
    FacilityFactory(timezone="Europe/Berlin")
    task = PeriodicTask.objects.get(name="Monthly rollover (Europe/Berlin)")
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_month) == ("5", "0", "1")
    assert str(task.crontab.timezone) == "Europe/Berlin"


def test_a_run_that_fails_is_recorded_as_failed_with_its_error():
    from unittest import mock

    facility = FacilityFactory()
    with (
        mock.patch("ledger.batch.inmate_id_chunks", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError),
    ):
        batch.roll_over_facility(facility_id=facility.pk, now=FEBRUARY_IN_SHANGHAI)
    run = ScheduledRun.objects.get(kind="rollover", facility=facility)
    assert run.status == "failed" and "disk full" in run.error and run.finished_at
