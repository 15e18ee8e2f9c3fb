"""Celery tasks: thin wrappers over ``ledger.batch`` and ``ledger.statements``. They take ids
and plain values, acknowledge late (a worker killed mid-task has its message delivered again)
and are safe to run twice, because the services they call are idempotent."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from facilities.models import Facility

from . import batch, partitions, statements
from .notifications import email_approvers_of_request  # noqa: F401 - the worker registers it

MONEY_TASK = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(**MONEY_TASK)
def roll_over_periods(timezone_name: str | None = None, trigger: str = "schedule") -> list[int]:
    """Fired at 00:05 on the 1st in each facility timezone (one schedule per timezone)."""
    runs = batch.roll_over_periods(timezone_name=timezone_name, trigger=trigger)
    return [run.pk for run in runs]


@shared_task(**MONEY_TASK)
def reconcile_ledger(trigger: str = "schedule", exact: bool = False) -> int:
    return batch.reconcile_ledger(trigger=trigger, exact=exact).pk


@shared_task(**MONEY_TASK)
def expire_stale_deposits() -> int:
    return batch.expire_stale_deposits().pk


@shared_task(**MONEY_TASK)
def generate_monthly_statements(
    facility_id: int | None = None, month: str | None = None, trigger: str = "schedule"
) -> list[int]:
    """Last month's statements for one facility, or for every facility."""
    facility_ids = (
        [facility_id]
        if facility_id
        else list(Facility.objects.order_by("id").values_list("id", flat=True))
    )
    month_date = dt.date.fromisoformat(month) if month else None
    return [
        statements.generate_statements(
            facility_id=pk, month=month_date, now=timezone.now(), trigger=trigger
        ).pk
        for pk in facility_ids
    ]


@shared_task(**MONEY_TASK)
def create_journal_partitions() -> list[str]:
    """Daily: the journal's partitions for this month and the next three (none on SQLite)."""
    return partitions.ensure_partitions()
