"""The built-in sandbox provider: a payment page of its own (Pay / Cancel / Fail) and signed
callbacks, so the whole deposit flow runs locally. It creates money out of nothing, so
``payments.providers.get_provider`` refuses it unless ``PAYMENTS_SANDBOX`` is set.

Its payment page hands the signed notification straight to the callback service
(``signed_notification``), in the same process: POSTing it to the site's own URL from inside a
request tied up a web worker waiting for another (a deadlock with one worker) and failed with
an uncaught URLError whenever SITE_URL did not reach this server. Anyone may still POST a
signed notification to ``/payments/sandbox/callback``, as a real provider would.

Callbacks are signed as Stripe signs its webhooks: the header
``Commissary-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``,
compared in constant time, refused more than five minutes from now in either direction.
"""

import datetime as dt
import hashlib
import hmac
import json

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

from ..models import SandboxCharge
from ..payers import Payer, masked
from .base import CallbackResult, InvalidCallback, StatusAnswer

SIGNATURE_HEADER = "Commissary-Signature"
TOLERANCE = dt.timedelta(minutes=5)
CALLBACK_TIMEOUT_SECONDS = 10
_STATUSES = {
    SandboxCharge.Status.OPEN: "pending",
    SandboxCharge.Status.PAID: "settled",
    SandboxCharge.Status.CANCELLED: "cancelled",
    SandboxCharge.Status.FAILED: "failed",
    SandboxCharge.Status.REFUNDED: "refunded",
}

# What a notification may report: the page's choice (pay, fail, cancel), never "pending".
_NOTIFIED = ("settled", "failed", "cancelled")


def signing_secret() -> bytes:
    """``PAYMENTS_SANDBOX_SECRET``, or one derived from SECRET_KEY for this installation."""
    if settings.PAYMENTS_SANDBOX_SECRET:
        return settings.PAYMENTS_SANDBOX_SECRET.encode()
    return salted_hmac("payments.sandbox.callback", "signing-secret").hexdigest().encode()


def signature_header(body: bytes, *, timestamp: int, secret: bytes | None = None) -> str:
    digest = hmac.new(
        secret or signing_secret(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def callback_body(charge: SandboxCharge) -> bytes:
    return json.dumps(
        {
            "reference": charge.reference,
            "status": _STATUSES[charge.status],
            "amount_fen": charge.amount_fen,
            "currency": charge.currency,
            "payer_id": charge.payer_id,
        },
        sort_keys=True,
    ).encode()


def fake_payer_id(depositor_id) -> str:
    """The sandbox's payer: deterministic, one per depositor (a test may give several
    depositors one payer by changing the charge's ``payer_id``)."""
    return f"sandbox-payer-{depositor_id}"


def _payer(payer_id: str) -> Payer | None:
    return Payer(provider_id=payer_id, label=masked(payer_id)) if payer_id else None


class SandboxProvider:
    name = "sandbox"

    def create_payment(self, payment) -> str:
        SandboxCharge.objects.get_or_create(
            reference=payment.provider_reference,
            defaults={
                "amount_fen": payment.amount_fen,
                "currency": payment.currency,
                "payer_id": fake_payer_id(payment.deposit.depositor_id),
            },
        )
        return reverse("payments:sandbox_pay", args=[payment.provider_reference])

    def verify_callback(self, *, headers, body: bytes, now: dt.datetime) -> CallbackResult:
        parts = dict(
            part.split("=", 1)
            for part in headers.get(SIGNATURE_HEADER, "").split(",")
            if "=" in part
        )
        try:
            timestamp = int(parts["t"])
            signature = parts["v1"]
        except (KeyError, ValueError):
            raise InvalidCallback() from None
        if abs(now.timestamp() - timestamp) > TOLERANCE.total_seconds():
            raise InvalidCallback("The payment notification is too old or from the future.")
        expected = signature_header(body, timestamp=timestamp).split("v1=", 1)[1]
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise InvalidCallback()
        try:
            payload = json.loads(body)
            result = CallbackResult(
                provider_reference=str(payload["reference"]),
                status=str(payload["status"]),
                amount_fen=payload["amount_fen"],
                currency=str(payload["currency"]),
                payer=_payer(str(payload.get("payer_id") or "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidCallback("The payment notification could not be read.") from None
        if result.status not in _NOTIFIED or type(result.amount_fen) is not int:
            raise InvalidCallback("The payment notification could not be read.")
        return result

    def query_status(self, payment) -> StatusAnswer:
        charge = SandboxCharge.objects.filter(reference=payment.provider_reference).first()
        if charge is None:
            return StatusAnswer("pending")
        return StatusAnswer(_STATUSES[charge.status], _payer(charge.payer_id))

    def refund_number(self, payment) -> str:
        return f"{payment.provider_reference}-refund"

    def refund(self, payment, *, request_number: str | None = None, reason: str = "") -> None:
        SandboxCharge.objects.filter(reference=payment.provider_reference).update(
            status=SandboxCharge.Status.REFUNDED
        )

    def close_order(self, payment) -> None:
        SandboxCharge.objects.filter(
            reference=payment.provider_reference, status=SandboxCharge.Status.OPEN
        ).update(status=SandboxCharge.Status.CANCELLED)

    # --- the sandbox's own side: its payment page acts, then notifies the app -----------

    def signed_notification(self, charge: SandboxCharge, *, now: dt.datetime) -> tuple[dict, bytes]:
        """The headers and body of the signed notification a provider's server would send
        about ``charge``."""
        body = callback_body(charge)
        return {SIGNATURE_HEADER: signature_header(body, timestamp=int(now.timestamp()))}, body
