"""List (``--dry-run``) or delete the monitoring data past its retention period."""

from django.core.management.base import BaseCommand

from monitoring import services


class Command(BaseCommand):
    help = (
        "Delete decided holds and switched-off auto-accepted pairs older than "
        "MONITORING_RETENTION_DAYS and blank the payer's name on payments made before then; "
        "with --dry-run, only list how many there are."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List, delete nothing.")

    def handle(self, *args, dry_run=False, **options):
        if dry_run:
            for name, queryset in services.purgeable().items():
                self.stdout.write(f"{name}: {queryset.count()} would be purged")
            return
        for name, count in services.purge_monitoring_data().items():
            self.stdout.write(f"{name}: {count} purged")
