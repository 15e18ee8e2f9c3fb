"""The daily refund of holds nobody decided in time, kept by django-celery-beat like the
ledger's schedules (created after ``migrate`` when missing, never overwritten)."""

from django.db import DEFAULT_DB_ALIAS
from django_celery_beat.models import CrontabSchedule, PeriodicTask

STALE_HOLDS_TASK = "monitoring.tasks.refund_stale_holds"


def ensure_schedule(*, using=DEFAULT_DB_ALIAS, **kwargs) -> PeriodicTask:
    existing = PeriodicTask.objects.using(using).filter(task=STALE_HOLDS_TASK).first()
    if existing is not None:
        return existing
    schedule, _ = CrontabSchedule.objects.using(using).get_or_create(
        minute="15",
        hour="6",
        day_of_month="*",
        month_of_year="*",
        day_of_week="*",
        timezone="Asia/Shanghai",
    )
    return PeriodicTask.objects.using(using).create(
        name="Refund held deposits not decided in time",
        task=STALE_HOLDS_TASK,
        crontab=schedule,
    )
