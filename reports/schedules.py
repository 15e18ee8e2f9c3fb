"""The digest's default schedule, kept in the database by django-celery-beat like the ledger's
(``ledger.schedules``): created after every ``migrate`` when no schedule runs the fan-out task,
never overwritten once staff changed it (to stop the digest for everyone, disable it)."""

from django.db import DEFAULT_DB_ALIAS, transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from ledger import schedule_words
from ledger.schedules import SYSTEM_TIMEZONE

DIGEST_TASK = "reports.tasks.queue_staff_digests"


def ensure_digest_schedule(*, using=DEFAULT_DB_ALIAS) -> tuple[PeriodicTask, bool]:
    """The daily digest at 07:30 in the system timezone, created if no schedule runs it."""
    with transaction.atomic(using=using):
        existing = PeriodicTask.objects.using(using).filter(task=DIGEST_TASK).order_by("id")
        if existing.exists():
            return existing.first(), False
        crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
            minute="30",
            hour="7",
            day_of_month="*",
            month_of_year="*",
            day_of_week="*",
            timezone=SYSTEM_TIMEZONE,
        )
        return PeriodicTask.objects.using(using).create(
            name=schedule_words.default_name(DIGEST_TASK),
            task=DIGEST_TASK,
            crontab=crontab,
            description=schedule_words.default_description(DIGEST_TASK),
        ), True
