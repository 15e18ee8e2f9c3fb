"""The default schedules of the scheduled money work, kept in the database by
django-celery-beat so staff can see and change them in the admin. ``ensure_schedules`` creates
what is missing and never overwrites what staff changed."""

import json

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from facilities.models import Facility

SYSTEM_TIMEZONE = "Asia/Shanghai"


def _crontab(*, minute, hour, day_of_month="*", timezone_name=SYSTEM_TIMEZONE):
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=str(minute),
        hour=str(hour),
        day_of_month=str(day_of_month),
        month_of_year="*",
        day_of_week="*",
        timezone=timezone_name,
    )
    return schedule


def ensure_rollover_schedule(timezone_name: str) -> PeriodicTask:
    """The monthly rollover for every facility in one timezone: 00:05 local on the 1st."""
    task, _ = PeriodicTask.objects.get_or_create(
        name=f"Monthly rollover ({timezone_name})",
        defaults={
            "task": "ledger.tasks.roll_over_periods",
            "crontab": _crontab(minute=5, hour=0, day_of_month=1, timezone_name=timezone_name),
            "kwargs": json.dumps({"timezone_name": timezone_name}),
            "description": "Closes the ended month's periods and opens the new month's.",
        },
    )
    return task


def ensure_schedules() -> list[PeriodicTask]:
    """Create every default schedule that does not exist yet (idempotent)."""
    with transaction.atomic():
        every_five_minutes, _ = IntervalSchedule.objects.get_or_create(
            every=5, period=IntervalSchedule.MINUTES
        )
        defaults = [
            (
                "Nightly reconciliation",
                "ledger.tasks.reconcile_ledger",
                {"crontab": _crontab(minute=30, hour=2)},
                "Checks journal, balances, periods and deposits agree; emails on findings.",
            ),
            (
                "Expire unpaid deposits",
                "ledger.tasks.expire_stale_deposits",
                {"interval": every_five_minutes},
                "Releases the cap room of deposits whose payment never came.",
            ),
            (
                "Poll pending payments",
                "payments.tasks.poll_pending_payments",
                {"interval": every_five_minutes},
                "Asks payment providers about payments still pending, so a lost callback "
                "loses no money.",
            ),
            (
                "Monthly statements",
                "ledger.tasks.generate_monthly_statements",
                {"crontab": _crontab(minute=0, hour=3, day_of_month=1)},
                "Last month's statement for every inmate, HTML and PDF.",
            ),
        ]
        tasks = []
        for name, task_name, schedule, description in defaults:
            task, _ = PeriodicTask.objects.get_or_create(
                name=name,
                defaults={"task": task_name, "description": description, **schedule},
            )
            tasks.append(task)
        timezones = set(Facility.objects.values_list("timezone", flat=True)) or {SYSTEM_TIMEZONE}
        tasks += [ensure_rollover_schedule(name) for name in sorted(timezones)]
    return tasks
