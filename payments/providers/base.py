"""The one interface every payment provider implements.

A provider is told about a payment (``create_payment``, which answers where to send the
family to pay), tells the app what happened through a signed callback (``verify_callback``)
or when asked (``query_status``), and returns a payment's whole amount (``refund``). The
callback's and the query's answers are checked against the payment by ``payments.services``,
never trusted for the amount.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext_lazy

from commissary import errors


class InvalidCallback(errors.DomainError):
    code = "invalid_callback"
    default_message = "The payment notification could not be verified."


@dataclass(frozen=True)
class CallbackResult:
    provider_reference: str
    status: str  # "settled" or "failed"
    amount_fen: int
    currency: str


class PaymentProvider(Protocol):
    name: str

    def create_payment(self, payment) -> str:
        """Register the payment at the provider; the URL the family pays at."""

    def verify_callback(self, *, headers, body: bytes, now: dt.datetime) -> CallbackResult:
        """Check the callback's signature and freshness; raise InvalidCallback if either
        fails or the body cannot be read."""

    def query_status(self, payment) -> str:
        """What the provider says now: "pending", "settled", "failed" or "refunded"."""

    def refund(self, payment) -> None:
        """Return the payment's whole amount (amount plus fee) to the payer. Idempotent."""


class ProviderError(errors.DomainError):
    """A real provider could not be reached, refused a request, or answered something that
    could not be verified. Nothing is recorded; the next callback or poll tries again."""

    code = "provider_error"
    default_message = gettext_lazy("The payment provider could not complete the request.")
