"""Scheduled runs shared by several workers: a run's work is cut into chunks (``BatchChunk``
rows: a range of inmate ids, or one reconciliation check) that workers claim one at a time, so
two workers never do the same chunk at once, none is left out, and a chunk whose worker died is
claimed again once its claim is older than ``LEDGER_CHUNK_CLAIM_SECONDS``.

Exactly once: a chunk's work and its ``done`` mark commit in one transaction, whose first
statement marks the chunk done where its ``attempt`` is still the claimer's. That statement
locks the row (PostgreSQL) or takes the database's one write lock (SQLite), so a second claimer
passes the chunk by while it is worked, and a worker whose claim was taken over finds no row to
mark and rolls its work back. Under this, every chunk's SQL stays idempotent (``ON CONFLICT``,
status guards, upserts), so even a chunk done again posts nothing twice.

Claims are one statement: on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets claimers pass each
other's rows; SQLite (the embedded default) has one writer at a time and claims by the same
statement without it. Transactions stay short: one for a claim, one for a chunk's work, one to
finish the run.
"""

import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from . import sql
from .models import BatchChunk, ScheduledRun

log = logging.getLogger(__name__)

Status = ScheduledRun.Status
State = BatchChunk.State


@dataclass(frozen=True)
class Piece:
    """A chunk to be: inmates with ``low_id < id <= high_id``, or a ``label`` (a check's name),
    and about how many items it covers (for the run's progress)."""

    low_id: int = 0
    high_id: int = 0
    label: str = ""
    size: int = 0


@dataclass(frozen=True)
class Claim:
    chunk_id: int
    run_id: int
    number: int
    low_id: int
    high_id: int
    label: str
    size: int
    attempt: int


@dataclass(frozen=True)
class Job:
    """What a kind of run does with a chunk. ``prepare`` runs outside any transaction (reads,
    rendering) and may return anything; ``apply`` runs in the chunk's transaction and returns
    the chunk's counts; ``finish`` gets the run (locked, still running) and every chunk's
    counts, sets the run's counts and status (``finish_run``), and may return what to do once
    that has committed (an alert to send)."""

    apply: Callable[[ScheduledRun, Claim, Any], dict]
    finish: Callable[[ScheduledRun, list[dict]], Callable[[], None] | None]
    prepare: Callable[[ScheduledRun, Claim], Any] = lambda run, claim: None


JOBS: dict[str, Job] = {}


def register_job(kind: str, job: Job) -> None:
    """Called at import by the module that does the kind's work (``ledger.batch``,
    ``ledger.statements``)."""
    JOBS[kind] = job


def chunk_pause() -> None:
    """An optional breather between chunks so that long batch work yields to the hot path."""
    pause = getattr(settings, "LEDGER_BATCH_PAUSE_SECONDS", 0)
    if pause:
        time.sleep(pause)


# --- runs --------------------------------------------------------------------------------


def start_run(
    *,
    kind: str,
    facility=None,
    month: dt.date | None = None,
    trigger: str = "schedule",
    now: dt.datetime,
) -> ScheduledRun:
    """Record the start of a run; an earlier run of the same work still marked running was
    killed (its transaction rolled back or its chunks are redone idempotently)."""
    ScheduledRun.objects.filter(
        kind=kind, facility=facility, month=month, status=Status.RUNNING
    ).update(status=Status.ABANDONED, finished_at=now)
    return ScheduledRun.objects.create(
        kind=kind, facility=facility, month=month, trigger=trigger, started_at=now
    )


@contextmanager
def recorded_run(**run_fields):
    """A ScheduledRun around a piece of batch work; if the work raises, the run is marked
    failed with the error before the exception goes on (to Celery's log and retry)."""
    run = start_run(**run_fields)
    try:
        yield run
    except Exception as failure:
        ScheduledRun.objects.filter(pk=run.pk).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            error=repr(failure)[:2000],
            progress_done=run.progress_done,
        )
        raise


def finish_run(run: ScheduledRun, *, status: str = Status.SUCCEEDED) -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at", "counts", "progress_done", "progress_total"])


def summed(counts: list[dict], keys: Iterable[str]) -> dict:
    """The chunks' counts added up, every key present (zero for a run without chunks)."""
    return {key: sum(chunk.get(key, 0) for chunk in counts) for key in keys}


# --- chunks ------------------------------------------------------------------------------


def this_worker() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def claim_seconds() -> float:
    return settings.LEDGER_CHUNK_CLAIM_SECONDS


def plan(run: ScheduledRun, pieces: Iterable[Piece]) -> int:
    """Record the run's chunks (in the caller's transaction); returns how many."""
    chunks = BatchChunk.objects.bulk_create(
        BatchChunk(
            run=run,
            number=number,
            low_id=piece.low_id,
            high_id=piece.high_id,
            label=piece.label,
            size=piece.size,
        )
        for number, piece in enumerate(pieces, start=1)
    )
    return len(chunks)


def claim_next(*, run_id: int, worker: str, now: dt.datetime | None = None) -> Claim | None:
    """Claim the run's first chunk that is pending, or whose claim has expired; None when
    none is left to claim (all done, or the rest held by live claims) or the run has ended."""
    now = now or timezone.now()
    expired_before = now - dt.timedelta(seconds=claim_seconds())
    skip_locked = (
        " FOR UPDATE OF c SKIP LOCKED"
        if connection.features.has_select_for_update_skip_locked
        else ""
    )
    with transaction.atomic(), sql.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_batchchunk SET state = 'claimed', attempt = attempt + 1, worker = %s, "  # noqa: S608 - a constant lock clause; values are bound
            "claimed_at = %s WHERE id = ("
            " SELECT c.id FROM ledger_batchchunk c"
            " JOIN ledger_scheduledrun r ON r.id = c.run_id"
            " WHERE c.run_id = %s AND r.status = 'running'"
            " AND (c.state = 'pending' OR (c.state = 'claimed' AND c.claimed_at < %s))"
            f" ORDER BY c.number LIMIT 1{skip_locked}) "
            "RETURNING id, run_id, number, low_id, high_id, label, size, attempt",
            [worker[:200], now, run_id, expired_before],
        )
        row = cursor.fetchone()
    return Claim(*row) if row else None


def complete(claim: Claim, apply: Callable[[], dict], *, now: dt.datetime | None = None):
    """Do a claimed chunk's work and mark it done, in one transaction, if the claim is still
    this worker's; returns the chunk's counts, or None when another worker took it over."""
    now = now or timezone.now()
    with transaction.atomic():
        still_ours = BatchChunk.objects.filter(
            pk=claim.chunk_id, attempt=claim.attempt, state=State.CLAIMED
        ).update(state=State.DONE, finished_at=now)
        if not still_ours:
            return None
        counts = apply()
        BatchChunk.objects.filter(pk=claim.chunk_id).update(counts=counts)
        ScheduledRun.objects.filter(pk=claim.run_id).update(
            progress_done=F("progress_done") + claim.size
        )
    return counts


def record_failure(claim: Claim, failure: BaseException) -> None:
    """A chunk's work raised (a bug or bad data, not a dead worker): the chunk and its run
    fail with the error, and the other workers stop claiming the run's chunks. The next
    scheduled run does the work again."""
    error = repr(failure)[:2000]
    now = timezone.now()
    with transaction.atomic():
        failed = BatchChunk.objects.filter(
            pk=claim.chunk_id, attempt=claim.attempt, state=State.CLAIMED
        ).update(state=State.FAILED, error=error, finished_at=now)
        if failed:
            ScheduledRun.objects.filter(pk=claim.run_id, status=Status.RUNNING).update(
                status=Status.FAILED, finished_at=now, error=error
            )


def settle(run_id: int, *, now: dt.datetime | None = None) -> float | None:
    """Finish the run when every chunk is done (once, whoever gets here first). Returns None
    when the run has ended, else how many seconds until a chunk may be claimed again (0 for a
    pending one, or the wait until the oldest live claim expires)."""
    now = now or timezone.now()
    if not ScheduledRun.objects.filter(pk=run_id, status=Status.RUNNING).exists():
        return None
    open_chunks = BatchChunk.objects.filter(run_id=run_id, state__in=[State.PENDING, State.CLAIMED])
    if open_chunks.filter(state=State.PENDING).exists():
        return 0.0
    oldest_claim = open_chunks.order_by("claimed_at").values_list("claimed_at", flat=True).first()
    if oldest_claim is not None:
        expires_at = oldest_claim + dt.timedelta(seconds=claim_seconds())
        return max(0.0, (expires_at - now).total_seconds())
    with transaction.atomic():
        run = (
            ScheduledRun.objects.select_for_update(of=("self",))
            .select_related("facility")
            .filter(pk=run_id, status=Status.RUNNING)
            .first()
        )
        if run is None:
            return None
        counts = list(
            BatchChunk.objects.filter(run_id=run_id, state=State.DONE)
            .order_by("number")
            .values_list("counts", flat=True)
        )
        after_commit = JOBS[run.kind].finish(run, counts)
    if after_commit is not None:
        after_commit()
    return None


def work_through(run_id: int, *, worker: str | None = None) -> float | None:
    """Claim and do the run's chunks until none is left to claim, then settle the run (see
    ``settle`` for what is returned). Several workers may do this for one run at once."""
    worker = worker or this_worker()
    run = ScheduledRun.objects.select_related("facility").filter(pk=run_id).first()
    if run is None:
        return None
    job = JOBS[run.kind]
    while (claim := claim_next(run_id=run_id, worker=worker)) is not None:
        # The pause comes while the chunk is claimed and no transaction is open: it yields to
        # the hot path, and it is where the tests kill a worker holding a claim.
        chunk_pause()
        try:
            prepared = job.prepare(run, claim)
            counts = complete(
                claim, lambda claim=claim, prepared=prepared: job.apply(run, claim, prepared)
            )
        except Exception as failure:
            record_failure(claim, failure)
            raise
        if counts is None:
            log.warning("chunk %s of run %s was taken over by another worker", claim.number, run_id)
    return settle(run_id)
