"""The hourly escalation of disputes past their deadline, kept in the database by
django-celery-beat like the ledger's schedules (``ledger.schedules``): created after every
``migrate`` when no schedule runs the task, never overwritten once staff changed it (to stop
the escalation, disable its schedule; a deleted one comes back with the next ``migrate``)."""

from django.db import DEFAULT_DB_ALIAS, transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ledger import schedule_words

ESCALATION_TASK = "catalog.tasks.escalate_overdue_disputes"


def ensure_escalation_schedule(*, using=DEFAULT_DB_ALIAS) -> tuple[PeriodicTask, bool]:
    """Every hour, created if no schedule runs the escalation; with whether it was created now."""
    with transaction.atomic(using=using):
        existing = PeriodicTask.objects.using(using).filter(task=ESCALATION_TASK).order_by("id")
        if existing.exists():
            return existing.first(), False
        hourly = (
            IntervalSchedule.objects.using(using)
            .filter(every=1, period=IntervalSchedule.HOURS)
            .order_by("id")
            .first()
        ) or IntervalSchedule.objects.using(using).create(every=1, period=IntervalSchedule.HOURS)
        return PeriodicTask.objects.using(using).create(
            name=schedule_words.default_name(ESCALATION_TASK),
            task=ESCALATION_TASK,
            interval=hourly,
            description=schedule_words.default_description(ESCALATION_TASK),
        ), True
