from django.core.management.base import BaseCommand

from ledger.schedule_words import shown_name
from ledger.schedules import ensure_schedules


class Command(BaseCommand):
    help = (
        "Create the default schedules of the scheduled money work (rollover per facility "
        "timezone, nightly reconciliation, deposit expiry, monthly statements). Idempotent; "
        "schedules staff have changed in the admin are left as they are."
    )

    def handle(self, *args, **options):
        for task in ensure_schedules():
            schedule = task.crontab.human_readable if task.crontab else task.interval
            self.stdout.write(f"{shown_name(task.task, task.name)}: {schedule}")
