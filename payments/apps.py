from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Payments")

    def ready(self):
        # Models are loaded only now: the check module imports the ledger's, which import them.
        from ledger.reconciliation import register_check  # noqa: PLC0415

        from . import checks  # noqa: F401, PLC0415 - registers the system checks
        from .reconciliation import PROVIDER_SETTLEMENT_CHECK  # noqa: PLC0415

        register_check(PROVIDER_SETTLEMENT_CHECK)
