"""The daily refund of holds nobody decided in time, kept by django-celery-beat like the
ledger's schedules (created after ``migrate`` when missing, never overwritten), its wording
read in the reader's language (``ledger.schedule_words``)."""

from django.db import DEFAULT_DB_ALIAS
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from ledger import schedule_words

STALE_HOLDS_TASK = "monitoring.tasks.refund_stale_holds"
PURGE_TASK = "monitoring.tasks.purge_monitoring_data"
DAILY = ((STALE_HOLDS_TASK, "15"), (PURGE_TASK, "45"))  # (task, minute past 06:00)


def ensure_schedule(*, using=DEFAULT_DB_ALIAS, **kwargs) -> list[PeriodicTask]:
    schedules = []
    for task, minute in DAILY:
        existing = PeriodicTask.objects.using(using).filter(task=task).first()
        if existing is not None:
            schedules.append(existing)
            continue
        crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
            minute=minute,
            hour="6",
            day_of_month="*",
            month_of_year="*",
            day_of_week="*",
            timezone="Asia/Shanghai",
        )
        schedules.append(
            PeriodicTask.objects.using(using).create(
                name=schedule_words.default_name(task),
                task=task,
                crontab=crontab,
                description=schedule_words.default_description(task),
            )
        )
    return schedules
