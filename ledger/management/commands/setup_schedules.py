from django.core.management.base import BaseCommand

from ledger.schedules import ensure_schedules


class Command(BaseCommand):
    help = (
        "Create the default schedules of the scheduled money work (rollover per facility "
        "timezone, nightly reconciliation, deposit expiry, monthly statements). Idempotent; "
        "schedules staff have changed in the admin are left as they are."
    )

    def handle(self, *args, **options):
        for task in ensure_schedules():
            self.stdout.write(f"{task.name}: {task.crontab or task.interval}")
