from django.apps import AppConfig
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

from commissary import metrics

from . import metrics as ledger_metrics


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = _("Trust ledger")

    def ready(self):
        for source in (
            ledger_metrics.deposit_figures,
            ledger_metrics.scheduled_run_figures,
            ledger_metrics.reconciliation_figures,
        ):
            metrics.register_source(source)
        post_migrate.connect(
            create_default_schedules, sender=self, dispatch_uid="ledger.default_schedules"
        )


def create_default_schedules(sender, *, using, verbosity=1, stdout=None, **kwargs):
    """After ``migrate`` (and ``flush``): the scheduled money work is scheduled, with what staff
    changed kept (``ledger.schedules``). Skipped while migrations are still unapplied (a
    ``migrate`` to an earlier state), when the tables it writes may not exist yet."""
    executor = MigrationExecutor(connections[using])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    from .schedules import ensure_default_schedules  # models: not importable before ready()

    for task, created in ensure_default_schedules(using=using):
        if created and verbosity >= 1 and stdout is not None:
            stdout.write(f"  Scheduled: {task.name}\n")
