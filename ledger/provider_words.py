"""The payment providers' names as people read them, by the code a deposit stores in its
``provider`` (``payments.providers``): one place for the family's choice of how to pay, the
staff's deposits pages and the reports. A code without a name here is shown as stored."""

from django.utils.translation import gettext_lazy as _

PROVIDER_NAMES = {
    "alipay": _("Alipay"),
    "wechat": _("WeChat Pay"),
    "sandbox": _("Sandbox (test payments)"),
}


def provider_name(code: str) -> str:
    """The provider's name in the active language."""
    return str(PROVIDER_NAMES.get(code, code))
