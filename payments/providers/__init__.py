"""Payment providers behind one interface (``base.PaymentProvider``), looked up by name."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from commissary import errors

from .base import CallbackResult, InvalidCallback, PaymentProvider
from .sandbox import SandboxProvider

__all__ = ["CallbackResult", "InvalidCallback", "PaymentProvider", "get_provider"]


class ProviderUnavailable(errors.DomainError):
    code = "provider_unavailable"
    default_message = _("This payment provider is not available.")


def get_provider(name: str) -> PaymentProvider:
    """The provider called ``name``. The sandbox creates money out of nothing, so it exists
    only where ``PAYMENTS_SANDBOX`` is set (development, the demo and the tests)."""
    if name == SandboxProvider.name and settings.PAYMENTS_SANDBOX:
        return SandboxProvider()
    raise ProviderUnavailable()


def available_provider_names() -> list[str]:
    return [SandboxProvider.name] if settings.PAYMENTS_SANDBOX else []
