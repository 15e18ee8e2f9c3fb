"""Template helpers for the family pages: money shown in yuan, deposit states in words."""

from django import template
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from commissary.money import format_fen

register = template.Library()

_STATES = {
    "created": pgettext_lazy("deposit state", "Pending"),
    "held": _("Being reviewed"),
    "credited": _("Credited"),
    "failed": _("Failed"),
    "cancelled": _("Cancelled"),
    "expired": _("Expired"),
    "refunded": _("Refunded"),
}


@register.filter
def money(amount_fen, currency="CNY"):
    return format_fen(amount_fen, currency or "CNY")


@register.filter
def deposit_state(status: str):
    return _STATES.get(status, status)


@register.filter
def shown_status(deposit) -> str:
    """The deposit's state as the family reads it: its own status, except that a failed
    deposit whose payment the family cancelled on the payment page reads ``cancelled`` (no
    money was taken; the reservation was released as for a failure)."""
    payment = getattr(deposit, "payment", None)  # a deposit may have no payment row
    if deposit.status == "failed" and getattr(payment, "status", "") == "cancelled":
        return "cancelled"
    return deposit.status
