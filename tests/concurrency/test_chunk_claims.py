"""Several workers on one scheduled run (``ledger.chunks``), as real threads on PostgreSQL: two
claimers never get the same chunk, none is left out, a chunk being worked is passed by even
when its claim looks expired, and a run worked by four at once opens each period once."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from ledger import batch, chunks
from ledger.chunks import Piece
from ledger.models import BatchChunk, MonthlyPeriod, ScheduledRun
from ledger.reconciliation import run_checks
from tests.factories import FacilityFactory, InmateFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]

CLAIMERS = 8
CHUNKS = 60


def _run_with_chunks(count: int) -> ScheduledRun:
    run = ScheduledRun.objects.create(kind=ScheduledRun.Kind.ROLLOVER, started_at=timezone.now())
    chunks.plan(run, [Piece(low_id=n, high_id=n + 1, size=1) for n in range(count)])
    return run


def test_claimers_racing_for_chunks_each_get_different_ones_and_leave_none(run_together):
    run = _run_with_chunks(CHUNKS)

    def claim_all(worker: str) -> list[tuple[int, int]]:
        claimed = []
        while (claim := chunks.claim_next(run_id=run.pk, worker=worker)) is not None:
            claimed.append((claim.chunk_id, claim.attempt))
        return claimed

    outcomes = run_together([lambda n=n: claim_all(f"claimer-{n}") for n in range(CLAIMERS)])

    assert all(outcome.succeeded for outcome in outcomes), [o.error for o in outcomes]
    claimed = [pair for outcome in outcomes for pair in outcome.value]
    chunk_ids = [chunk_id for chunk_id, _attempt in claimed]
    assert len(chunk_ids) == len(set(chunk_ids)) == CHUNKS  # no chunk twice, none left out
    assert {attempt for _chunk_id, attempt in claimed} == {1}
    assert sum(1 for outcome in outcomes if outcome.value) > 1  # they really shared the run
    rows = BatchChunk.objects.filter(run=run)
    assert set(rows.values_list("state", "attempt")) == {("claimed", 1)}
    by_worker = {
        chunk_id: f"claimer-{n}"
        for n, outcome in enumerate(outcomes)
        for chunk_id, _attempt in outcome.value
    }
    assert dict(rows.values_list("id", "worker")) == by_worker


def test_a_chunk_being_worked_is_passed_by_even_when_its_claim_looks_expired():
    run = _run_with_chunks(2)
    long_ago = timezone.now() - dt.timedelta(hours=1)
    first = chunks.claim_next(run_id=run.pk, worker="slow", now=long_ago)
    working, may_finish = threading.Event(), threading.Event()
    finished = {}

    def slow_work() -> dict:
        working.set()
        assert may_finish.wait(timeout=30)
        return {"items": 1}

    def work_first_chunk():
        try:
            finished["counts"] = chunks.complete(first, slow_work)
        finally:
            connection.close()

    thread = threading.Thread(target=work_first_chunk, daemon=True)
    thread.start()
    assert working.wait(timeout=30)
    # The first chunk's claim is an hour old, but its worker holds it in a transaction.
    second = chunks.claim_next(run_id=run.pk, worker="fresh")
    again = chunks.claim_next(run_id=run.pk, worker="fresh")
    may_finish.set()
    thread.join(timeout=30)

    assert second is not None and second.chunk_id != first.chunk_id
    assert again is None
    assert finished["counts"] == {"items": 1}
    done = BatchChunk.objects.get(pk=first.chunk_id)
    assert (done.state, done.attempt, done.worker, done.counts) == (
        "done",
        1,
        "slow",
        {"items": 1},
    )


def test_four_workers_on_one_rollover_open_each_period_once(run_together):
    facility = FacilityFactory()
    inmates = InmateFactory.create_batch(120, facility=facility)
    run = batch.start_rollover(facility_id=facility.pk, chunk_size=7)

    outcomes = run_together(
        [lambda n=n: chunks.work_through(run.pk, worker=f"worker-{n}") for n in range(4)]
    )

    assert all(outcome.succeeded for outcome in outcomes), [o.error for o in outcomes]
    run.refresh_from_db()
    assert (run.status, run.counts) == (
        "succeeded",
        {"periods_closed": 0, "periods_opened": len(inmates)},
    )
    assert (run.progress_done, run.progress_total) == (len(inmates), len(inmates))
    rows = BatchChunk.objects.filter(run=run)
    assert rows.count() == 18  # 120 inmates in chunks of 7
    assert set(rows.values_list("state", "attempt")) == {("done", 1)}
    assert sum(count["periods_opened"] for count in rows.values_list("counts", flat=True)) == 120
    assert len(set(rows.values_list("worker", flat=True))) > 1
    periods = MonthlyPeriod.objects.filter(facility=facility, month=run.month)
    assert sorted(periods.values_list("inmate_id", flat=True)) == sorted(i.pk for i in inmates)
    assert run_checks() == []
