"""Claimable chunks of a scheduled run (``ledger.chunks``), in one process: a worker whose
claim was taken over commits nothing, a chunk that fails fails its run and stops the others,
and a run waits for a live claim until it expires. The races are in
``tests/concurrency/test_chunk_claims.py``; real workers in ``tests/celery/test_shared_runs.py``."""

import datetime as dt

import pytest
from django.utils import timezone

from ledger import batch, chunks
from ledger.chunks import Piece
from ledger.models import BatchChunk, MonthlyPeriod, ScheduledRun
from tests.factories import FacilityFactory, InmateFactory

pytestmark = pytest.mark.django_db


def _run_with_chunks(count: int, kind=ScheduledRun.Kind.ROLLOVER) -> ScheduledRun:
    run = ScheduledRun.objects.create(kind=kind, started_at=timezone.now())
    chunks.plan(run, [Piece(low_id=n, high_id=n + 1, size=1) for n in range(count)])
    return run


def test_a_worker_whose_claim_was_taken_over_does_not_do_the_chunk(settings):
    settings.LEDGER_CHUNK_CLAIM_SECONDS = 60
    run = _run_with_chunks(1)
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    stale = chunks.claim_next(run_id=run.pk, worker="presumed-dead", now=an_hour_ago)
    fresh = chunks.claim_next(run_id=run.pk, worker="alive")
    assert (stale.chunk_id, stale.attempt, fresh.chunk_id, fresh.attempt) == (
        fresh.chunk_id,
        1,
        stale.chunk_id,
        2,
    )
    worked = []

    assert chunks.complete(stale, lambda: worked.append("stale") or {"n": 1}) is None
    assert chunks.complete(fresh, lambda: worked.append("fresh") or {"n": 1}) == {"n": 1}
    assert worked == ["fresh"]
    chunk = BatchChunk.objects.get(run=run)
    assert (chunk.state, chunk.attempt, chunk.worker, chunk.counts) == (
        "done",
        2,
        "alive",
        {"n": 1},
    )


def test_a_live_claim_is_waited_for_until_it_expires(settings):
    settings.LEDGER_CHUNK_CLAIM_SECONDS = 60
    run = _run_with_chunks(1)
    now = timezone.now()
    chunks.claim_next(run_id=run.pk, worker="busy", now=now)
    assert chunks.claim_next(run_id=run.pk, worker="idle", now=now) is None
    assert chunks.settle(run.pk, now=now + dt.timedelta(seconds=20)) == pytest.approx(40)
    assert chunks.claim_next(run_id=run.pk, worker="idle", now=now + dt.timedelta(seconds=61))


def test_a_chunk_that_fails_fails_its_run_and_no_one_claims_the_rest(monkeypatch):
    facility = FacilityFactory()
    InmateFactory.create_batch(6, facility=facility)
    run = batch.start_rollover(facility_id=facility.pk, chunk_size=2)
    calls = []

    def broken(run, claim, prepared):
        calls.append(claim.number)
        raise RuntimeError("disk full")

    job = chunks.JOBS[ScheduledRun.Kind.ROLLOVER]
    monkeypatch.setitem(
        chunks.JOBS, ScheduledRun.Kind.ROLLOVER, chunks.Job(apply=broken, finish=job.finish)
    )
    with pytest.raises(RuntimeError):
        chunks.work_through(run.pk, worker="one")
    assert chunks.work_through(run.pk, worker="another") is None  # nothing to claim

    run.refresh_from_db()
    assert run.status == "failed" and "disk full" in run.error and run.finished_at
    assert calls == [1]
    assert list(
        BatchChunk.objects.filter(run=run).order_by("number").values_list("state", flat=True)
    ) == [
        "failed",
        "pending",
        "pending",
    ]
    assert not MonthlyPeriod.objects.filter(facility=facility).exists()


def test_a_run_of_the_same_work_started_again_abandons_the_first_and_its_chunks():
    facility = FacilityFactory()
    InmateFactory.create_batch(4, facility=facility)
    first = batch.start_rollover(facility_id=facility.pk, chunk_size=2)
    second = batch.roll_over_facility(facility_id=facility.pk, chunk_size=2)
    first.refresh_from_db()
    assert (first.status, second.status) == ("abandoned", "succeeded")
    assert chunks.claim_next(run_id=first.pk, worker="late") is None
    assert second.counts == {"periods_closed": 0, "periods_opened": 4}


def test_the_rollover_closes_an_ended_period_of_an_inmate_transferred_away(settings):
    """The chunks reach from id 0 to past every id, so a period the facility still owns is
    closed whichever facility its inmate is in now."""
    facility, elsewhere = FacilityFactory(), FacilityFactory()
    stays = InmateFactory(facility=facility)
    moved = InmateFactory(facility=elsewhere)  # its id is past every inmate of the facility
    # The facility's last local month, never the server's.
    last_month = (facility.local_month(timezone.now()) - dt.timedelta(days=1)).replace(day=1)
    MonthlyPeriod.objects.create(inmate=moved, facility=facility, month=last_month, cap_fen=100_000)
    run = batch.roll_over_facility(facility_id=facility.pk)
    assert run.counts == {"periods_closed": 1, "periods_opened": 1}
    assert MonthlyPeriod.objects.get(inmate=moved).closed_at == run.started_at
    assert MonthlyPeriod.objects.filter(facility=facility, month=run.month).get().inmate == stays


def test_the_scheduled_task_on_a_worker_queues_a_helper_per_further_chunk(monkeypatch, settings):
    from ledger import tasks

    settings.LEDGER_ROLLOVER_CHUNK_SIZE = 2
    facility = FacilityFactory(timezone="Europe/Berlin")
    InmateFactory.create_batch(5, facility=facility)
    queued = []
    monkeypatch.setattr(tasks.work_on_run, "apply_async", lambda **options: queued.append(options))

    # As a worker runs it (apply: a task request, not a plain call).
    [run_id] = tasks.roll_over_periods.apply(kwargs={"timezone_name": "Europe/Berlin"}).get()

    run = ScheduledRun.objects.get(pk=run_id)
    assert (run.status, run.counts["periods_opened"]) == ("succeeded", 5)
    assert (
        queued == [{"kwargs": {"run_id": run_id}, "queue": settings.WORK_QUEUES["money"]}] * 2
    )  # three chunks: the task does them all here, the helpers would join on others
    queued.clear()
    # Called as a plain function (a shell, a test): it does the run and queues nothing.
    tasks.roll_over_periods(timezone_name="Europe/Berlin")
    assert queued == []
