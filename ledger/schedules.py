"""The default schedules of the scheduled money work, kept in the database by
django-celery-beat so staff can see and change them in the admin.

``ensure_schedules`` creates what is missing and never overwrites what staff changed. It runs
after every ``migrate`` (a ``post_migrate`` handler in ``ledger.apps``), so an installation that
has only migrated already schedules its nightly work; ``setup_schedules`` runs it by hand. A
default counts as present when any schedule runs its task (for the rollover: its task for that
timezone), whatever staff renamed, disabled or re-timed: to stop a piece of work, disable its
schedule; a deleted default comes back with the next ``migrate``. Their names and
descriptions are stored in English and read in the reader's language (``schedule_words``).
"""

import datetime as dt
import json

from django.db import DEFAULT_DB_ALIAS, transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from facilities.models import Facility

from . import schedule_words
from .schedule_words import ROLLOVER_TASK

SYSTEM_TIMEZONE = "Asia/Shanghai"
EXPIRY_TASK = "ledger.tasks.expire_stale_deposits"
# How often unpaid deposits are expired by default. Reconciliation allows a reservation this
# long (as staff have set the schedule) past its expiry before it reports it.
EXPIRY_INTERVAL = dt.timedelta(minutes=5)
RECEIPT_SWEEP_TASK = "payments.tasks.queue_unsent_receipts"
PROVIDER_CALL_SWEEP_TASK = "payments.tasks.retry_provider_calls"


def _crontab(*, minute, hour, day_of_month="*", timezone_name=SYSTEM_TIMEZONE, using):
    schedule, _ = CrontabSchedule.objects.using(using).get_or_create(
        minute=str(minute),
        hour=str(hour),
        day_of_month=str(day_of_month),
        month_of_year="*",
        day_of_week="*",
        timezone=timezone_name,
    )
    return schedule


def _minutes(every: int, *, using) -> IntervalSchedule:
    """An interval of ``every`` minutes: the first one there is (intervals are not unique, and
    staff may have made another the same), else a new one."""
    interval = (
        IntervalSchedule.objects.using(using)
        .filter(every=every, period=IntervalSchedule.MINUTES)
        .order_by("id")
        .first()
    )
    return interval or IntervalSchedule.objects.using(using).create(
        every=every, period=IntervalSchedule.MINUTES
    )


def _task(*, using, name, task, kwargs=None, **fields) -> tuple[PeriodicTask, bool]:
    """The schedule that runs ``task`` (with ``kwargs``), created as given if there is none."""
    for existing in PeriodicTask.objects.using(using).filter(task=task).order_by("id"):
        if kwargs is None or _parsed(existing.kwargs) == kwargs:
            return existing, False
    same_name = PeriodicTask.objects.using(using).filter(name=name).first()
    if same_name:
        return same_name, False
    return PeriodicTask.objects.using(using).create(
        name=name, task=task, kwargs=json.dumps(kwargs or {}), **fields
    ), True


def _parsed(kwargs_json: str):
    try:
        return json.loads(kwargs_json or "{}")
    except ValueError:
        return None


def ensure_rollover_schedule(timezone_name: str, *, using=DEFAULT_DB_ALIAS) -> PeriodicTask:
    """The monthly rollover for every facility in one timezone: 00:05 local on the 1st."""
    return _ensure_rollover(timezone_name, using=using)[0]


def _ensure_rollover(timezone_name: str, *, using) -> tuple[PeriodicTask, bool]:
    return _task(
        using=using,
        name=schedule_words.rollover_name(timezone_name),
        task=ROLLOVER_TASK,
        kwargs={"timezone_name": timezone_name},
        crontab=_crontab(
            minute=5, hour=0, day_of_month=1, timezone_name=timezone_name, using=using
        ),
        description=schedule_words.default_description(ROLLOVER_TASK),
    )


def ensure_schedules(*, using=DEFAULT_DB_ALIAS) -> list[PeriodicTask]:
    """Every default schedule, created where missing (idempotent)."""
    return [task for task, _ in ensure_default_schedules(using=using)]


def ensure_default_schedules(*, using=DEFAULT_DB_ALIAS) -> list[tuple[PeriodicTask, bool]]:
    """Every default schedule, created where missing, each with whether it was created now."""
    every = EXPIRY_INTERVAL // dt.timedelta(minutes=1)
    with transaction.atomic(using=using):
        expiry_interval = _minutes(every, using=using)
        every_minute = _minutes(1, using=using)
        every_five_minutes = _minutes(5, using=using)
        every_fifteen_minutes = _minutes(15, using=using)
        defaults = [
            (
                "ledger.tasks.reconcile_ledger",
                {"crontab": _crontab(minute=30, hour=2, using=using)},
            ),
            (EXPIRY_TASK, {"interval": expiry_interval}),
            ("payments.tasks.poll_pending_payments", {"interval": every_five_minutes}),
            (PROVIDER_CALL_SWEEP_TASK, {"interval": every_minute}),
            (RECEIPT_SWEEP_TASK, {"interval": every_fifteen_minutes}),
            (
                "ledger.tasks.create_journal_partitions",
                {"crontab": _crontab(minute=15, hour=1, using=using)},
            ),
            (
                "ledger.tasks.generate_monthly_statements",
                {"crontab": _crontab(minute=0, hour=3, day_of_month=1, using=using)},
            ),
        ]
        tasks = [
            _task(
                using=using,
                name=schedule_words.default_name(task_name),
                task=task_name,
                description=schedule_words.default_description(task_name),
                **schedule,
            )
            for task_name, schedule in defaults
        ]
        timezones = set(Facility.objects.using(using).values_list("timezone", flat=True)) or {
            SYSTEM_TIMEZONE
        }
        tasks += [_ensure_rollover(name, using=using) for name in sorted(timezones)]
    return tasks


def expiry_interval() -> dt.timedelta:
    """How often unpaid deposits are expired: the longest interval among the expiry
    schedules as staff have set them, else the default."""
    intervals = [
        dt.timedelta(**{task.interval.period: task.interval.every})
        for task in PeriodicTask.objects.filter(
            task=EXPIRY_TASK, interval__isnull=False
        ).select_related("interval")
    ]
    return max(intervals, default=EXPIRY_INTERVAL)
