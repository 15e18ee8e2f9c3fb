"""System checks on the project's own settings, beyond Django's ``check --deploy``."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def sandbox_payments_in_production(app_configs, **kwargs):
    """The sandbox provider creates money on request: never with DEBUG off."""
    if settings.PAYMENTS_SANDBOX and not settings.DEBUG:
        return [
            Warning(
                "PAYMENTS_SANDBOX is on while DEBUG is off: anyone could pay with the "
                "built-in sandbox provider and create money.",
                hint="Set PAYMENTS_SANDBOX=false in production.",
                id="commissary.W001",
            )
        ]
    return []
