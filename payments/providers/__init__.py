"""Payment providers behind one interface (``base.PaymentProvider``), looked up by name."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from commissary import errors

from ..credentials import enabled_real_providers
from .alipay import AlipayProvider
from .base import CallbackResult, InvalidCallback, PaymentProvider, ProviderError, StatusAnswer
from .sandbox import SandboxProvider
from .wechat import WechatProvider

# The real providers, by the name in their callback URL (``/payments/<name>/callback``).
REAL_PROVIDERS = {AlipayProvider.name: AlipayProvider, WechatProvider.name: WechatProvider}

__all__ = [
    "CallbackResult",
    "InvalidCallback",
    "PaymentProvider",
    "ProviderError",
    "StatusAnswer",
    "get_provider",
]


class ProviderUnavailable(errors.DomainError):
    code = "provider_unavailable"
    default_message = _("This payment provider is not available.")


def get_provider(name: str) -> PaymentProvider:
    """The provider called ``name``. The sandbox creates money out of nothing, so it exists
    only where ``PAYMENTS_SANDBOX`` is set (development, the demo and the tests)."""
    if name == SandboxProvider.name and settings.PAYMENTS_SANDBOX:
        return SandboxProvider()
    if name in REAL_PROVIDERS:
        return REAL_PROVIDERS[name]()
    raise ProviderUnavailable()


def available_provider_names(facility_id: int | None = None) -> list[str]:
    """The providers a family may choose: the sandbox where it is allowed, and for a facility
    the real providers it has an enabled merchant account for (its own or the environment's)."""
    names = [SandboxProvider.name] if settings.PAYMENTS_SANDBOX else []
    if facility_id is not None:
        names += enabled_real_providers(facility_id)
    return names
