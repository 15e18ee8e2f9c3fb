"""The one interface every payment provider implements.

A provider is told about a payment (``create_payment``, which answers where to send the
family to pay), tells the app what happened through a signed callback (``verify_callback``)
or when asked (``query_status``), and returns a payment's whole amount (``refund``). The
callback's and the query's answers are checked against the payment by ``payments.services``,
never trusted for the amount.
"""

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext_lazy

from commissary import errors

from .. import credentials
from ..models import ProviderCheckout
from ..payers import Payer


class InvalidCallback(errors.DomainError):
    code = "invalid_callback"
    default_message = "The payment notification could not be verified."


@dataclass(frozen=True)
class CallbackResult:
    provider_reference: str
    status: str  # "settled", "failed" or "cancelled" (the payer gave up; nothing was taken)
    amount_fen: int
    currency: str
    payer: Payer | None = None  # who paid, when the provider says


@dataclass(frozen=True)
class StatusAnswer:
    """What a status query answers: "pending", "settled", "failed", "cancelled" or
    "refunded", and who paid when the provider says."""

    status: str
    payer: Payer | None = None


class PaymentProvider(Protocol):
    name: str

    def create_payment(self, payment) -> str:
        """Register the payment at the provider; the URL the family pays at."""

    def verify_callback(self, *, headers, body: bytes, now: dt.datetime) -> CallbackResult:
        """Check the callback's signature and freshness; raise InvalidCallback if either
        fails or the body cannot be read."""

    def query_status(self, payment) -> StatusAnswer:
        """What the provider says now ("pending", "settled", "failed", "cancelled" or
        "refunded"), and who paid if it says."""

    def refund_number(self, payment) -> str:
        """The payment's one refund request number, fixed when the refund is decided."""

    def refund(self, payment, *, request_number: str | None = None, reason: str = "") -> None:
        """Return the payment's whole amount (amount plus fee) to the payer. Idempotent by
        ``request_number``: the provider refunds a repeated number once."""

    def close_order(self, payment) -> None:
        """Close the payment's order, so it can no longer be paid. Idempotent."""


class ProviderError(errors.DomainError):
    """A real provider could not be reached, refused a request, or answered something that
    could not be verified. Nothing is recorded; the next callback or poll tries again."""

    code = "provider_error"
    default_message = gettext_lazy("The payment provider could not complete the request.")


def out_trade_no(payment) -> str:
    """The payment's order number at a real provider: the deposit's reference as 32 hex digits
    (Alipay allows letters, digits and underscores only; WeChat Pay at most 32 characters)."""
    return uuid.UUID(payment.provider_reference).hex


def reference_from_out_trade_no(value) -> str:
    """The payment reference an order number names; InvalidCallback when it names none."""
    try:
        return str(uuid.UUID(hex=value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidCallback("The payment notification names no payment of ours.") from None


def account_for_payment(provider: str, payment, *, missing_message) -> credentials.Account:
    """The merchant account a payment's order was placed under (kept on its first checkout), so
    callbacks, polls and refunds use it even after the facility's settings change; before any
    checkout, the facility's current account. ProviderError with ``missing_message`` when
    there is none."""
    facility_id = payment.deposit.facility_id
    checkout = ProviderCheckout.objects.filter(payment_id=payment.pk).order_by("created_at").first()
    if checkout is not None:
        account = credentials.account_for_merchant(provider, checkout.merchant_id, facility_id)
    else:
        account = credentials.account_for_facility(provider, facility_id)
    if account is None:
        raise ProviderError(missing_message)
    return account
