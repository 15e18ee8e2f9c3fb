"""Template helpers for the family pages: money shown in yuan, deposit states in words."""

from django import template
from django.utils.translation import gettext_lazy as _

from commissary.money import format_fen

register = template.Library()

_STATES = {
    "created": _("Pending"),
    "held": _("Being reviewed"),
    "credited": _("Credited"),
    "failed": _("Failed"),
    "expired": _("Expired"),
    "refunded": _("Refunded"),
}


@register.filter
def money(amount_fen, currency="CNY"):
    return format_fen(amount_fen, currency or "CNY")


@register.filter
def deposit_state(status: str):
    return _STATES.get(status, status)
