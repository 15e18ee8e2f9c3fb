from django.apps import AppConfig
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Commissary catalog and orders")

    def ready(self):
        from ledger import memos  # noqa: PLC0415

        from .selectors import line_product_name  # noqa: PLC0415

        # A line refund's memo names the product in English; the reader's language from here.
        memos.register_product_namer(line_product_name)
        post_migrate.connect(
            create_escalation_schedule, sender=self, dispatch_uid="catalog.escalation_schedule"
        )


def create_escalation_schedule(sender, *, using, verbosity=1, stdout=None, **kwargs):
    """After ``migrate``: overdue disputes are escalated hourly (``catalog.schedules``), as the
    ledger schedules its work; skipped while migrations are still unapplied."""
    executor = MigrationExecutor(connections[using])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    from .schedules import ensure_escalation_schedule  # models: not importable before ready()

    task, created = ensure_escalation_schedule(using=using)
    if created and verbosity >= 1 and stdout is not None:
        stdout.write(f"  Scheduled: {task.name}\n")
