"""Celery tasks: thin wrappers over ``ledger.batch``, ``ledger.statements`` and
``ledger.chunks``. They take ids and plain values, acknowledge late (a worker killed mid-task
has its message delivered again) and are safe to run twice, because the services they call are
idempotent.

Many workers, one run: a scheduled task records its run and the run's chunks, queues one
``work_on_run`` per further chunk for the other workers, and then works through the chunks
itself. Each worker claims chunk after chunk (``ledger.chunks``) until none is left; a chunk
whose worker died is claimed again after LEDGER_CHUNK_CLAIM_SECONDS by a worker that queued
itself to look again then. With one worker, the scheduled task does every chunk itself.
"""

import datetime as dt
import os

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import batch, chunks, partitions, statements
from .models import ScheduledRun
from .notifications import email_approvers_of_request  # noqa: F401 - the worker registers it

MONEY_TASK = {"acks_late": True, "reject_on_worker_lost": True}


def _worker_name(task) -> str:
    return f"{task.request.hostname or 'local'}:{os.getpid()}"


def _queue_of(run: ScheduledRun) -> str:
    """Statements are report work (rendering); the rest is money work."""
    work = "reports" if run.kind == ScheduledRun.Kind.STATEMENTS else "money"
    return settings.WORK_QUEUES[work]


def _share(runs: list[ScheduledRun]) -> None:
    """One ``work_on_run`` message per chunk beyond the first, so idle workers join in."""
    for run in runs:
        helpers = run.chunks.count() - 1
        for _ in range(max(0, helpers)):
            work_on_run.apply_async(kwargs={"run_id": run.pk}, queue=_queue_of(run))


def _work_through(task, runs: list[ScheduledRun]) -> list[int]:
    for run in runs:
        wait_seconds = chunks.work_through(run.pk, worker=_worker_name(task))
        if wait_seconds is not None:
            _look_again(run, wait_seconds)
    return [run.pk for run in runs]


def _look_again(run: ScheduledRun, wait_seconds: float) -> None:
    """Other workers hold the run's last chunks: come back when the oldest claim expires, to
    take it over if its worker died (or to find the run finished)."""
    work_on_run.apply_async(
        kwargs={"run_id": run.pk}, queue=_queue_of(run), countdown=wait_seconds + 1
    )


@shared_task(bind=True, **MONEY_TASK)
def work_on_run(self, run_id: int) -> int:
    """Claim and do chunks of a run until none is left; returns the run's id."""
    wait_seconds = chunks.work_through(run_id, worker=_worker_name(self))
    if wait_seconds is not None:
        _look_again(ScheduledRun.objects.get(pk=run_id), wait_seconds)
    return run_id


def _start_and_work(task, start_runs) -> list[int]:
    """Record the runs and their chunks (each run's in a transaction of its own), queue the
    helpers (not when called as a plain function, outside a worker: then it does it all),
    then work."""
    runs = start_runs()
    if not task.request.called_directly:
        _share(runs)
    return _work_through(task, runs)


@shared_task(bind=True, **MONEY_TASK)
def roll_over_periods(
    self, timezone_name: str | None = None, trigger: str = "schedule"
) -> list[int]:
    """Fired at 00:05 on the 1st in each facility timezone (one schedule per timezone)."""
    now = timezone.now()
    return _start_and_work(
        self,
        lambda: [
            batch.start_rollover(facility_id=facility_id, now=now, trigger=trigger)
            for facility_id in batch.facilities_in(timezone_name)
        ],
    )


@shared_task(bind=True, **MONEY_TASK)
def reconcile_ledger(self, trigger: str = "schedule", exact: bool = False) -> int:
    [run_id] = _start_and_work(
        self, lambda: [batch.start_reconciliation(trigger=trigger, exact=exact)]
    )
    return run_id


@shared_task(bind=True, **MONEY_TASK)
def expire_stale_deposits(self) -> int:
    [run_id] = _start_and_work(self, lambda: [batch.start_expiry()])
    return run_id


@shared_task(bind=True, **MONEY_TASK)
def generate_monthly_statements(
    self, facility_id: int | None = None, month: str | None = None, trigger: str = "schedule"
) -> list[int]:
    """Last month's statements for one facility, or for every facility."""
    facility_ids = [facility_id] if facility_id else batch.facilities_in(None)
    month_date = dt.date.fromisoformat(month) if month else None
    now = timezone.now()
    return _start_and_work(
        self,
        lambda: [
            statements.start_statements(facility_id=pk, month=month_date, now=now, trigger=trigger)
            for pk in facility_ids
        ],
    )


@shared_task(**MONEY_TASK)
def create_journal_partitions() -> list[str]:
    """Daily: the journal's partitions for this month and the next three (none on SQLite)."""
    return partitions.ensure_partitions()
