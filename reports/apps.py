from django.apps import AppConfig, apps
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("Reports")

    def ready(self):
        # Django sends post_migrate only for apps with models, which this one has none of: the
        # schedule is made when the ledger's (the schedules' home) are.
        post_migrate.connect(
            create_digest_schedule,
            sender=apps.get_app_config("ledger"),
            dispatch_uid="reports.digest_schedule",
        )


def create_digest_schedule(sender, *, using, verbosity=1, stdout=None, **kwargs):
    """After ``migrate``: the daily staff digest is scheduled (``reports.schedules``), as the
    ledger schedules its work; skipped while migrations are still unapplied."""
    executor = MigrationExecutor(connections[using])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    from .schedules import ensure_digest_schedule  # models: not importable before ready()

    task, created = ensure_digest_schedule(using=using)
    if created and verbosity >= 1 and stdout is not None:
        stdout.write(f"  Scheduled: {task.name}\n")
