from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Deposit monitoring")

    def ready(self):
        # Models are loaded only now: the screener reads them.
        from payments import screening  # noqa: PLC0415

        from .screening import RuleScreener  # noqa: PLC0415

        screening.register_screener(RuleScreener())

        from .schedules import ensure_schedule  # noqa: PLC0415

        # Every rule change, decision, auto-accept switch and deadline change is in the trail
        # (registered with the other audited models, in ``accounts.audit``, so each entry
        # carries its facility; the decisions, single UPDATEs, are written by the services).

        post_migrate.connect(
            lambda sender, using=None, **kwargs: ensure_schedule(using=using or "default"),
            sender=self,
            weak=False,
            dispatch_uid="monitoring.ensure_schedule",
        )
