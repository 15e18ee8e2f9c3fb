"""Alipay (支付宝) behind the provider interface, through ``python-alipay-sdk``.

- The family pays on Alipay's own page: ``alipay.trade.page.pay`` on a computer,
  ``alipay.trade.wap.pay`` on a phone, both signed (RSA2: SHA256withRSA over the sorted query
  string) with the merchant's application private key. ``out_trade_no`` is the deposit's
  reference (its 32 hex digits: Alipay allows letters, digits and underscores only) and
  ``time_expire`` the reservation's expiry in Beijing time.
- The asynchronous notification (a form POST to ``/payments/alipay/callback``) is verified with
  Alipay's RSA2 public key of the account that the notification's ``app_id`` names, and refused
  for another ``seller_id``, an amount that is not exactly the payment's, or an account that is
  not the one the order was placed under. The answer ``success`` is written only after the
  deposit's new state is committed (``payments.services`` commits before the view answers).
- ``alipay.trade.query`` backs the status poll and ``alipay.trade.refund`` the refunds, with
  ``out_request_no`` fixed per payment so a retried refund returns the money once.

The SDK is pointed at the account's gateway (production, Alipay's sandbox, or a local fake in
the tests) by setting its gateway after construction (``_point_at_gateway``), since its
constructor only knows the two public URLs; its own signing, verification and response parsing
run unchanged.
"""

import datetime as dt
import urllib.parse
from zoneinfo import ZoneInfo

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from alipay.utils import AliPayConfig
from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from .. import credentials
from ..amounts import MalformedAmount, fen_to_yuan, yuan_to_fen
from ..models import Payment, ProviderCheckout
from ..payers import Payer, masked
from .base import (
    CallbackResult,
    InvalidCallback,
    ProviderError,
    StatusAnswer,
    account_for_payment,
    out_trade_no,
    reference_from_out_trade_no,
)

BEIJING = ZoneInfo("Asia/Shanghai")
GATEWAY_TIMEOUT_SECONDS = 10
_STATUSES = {
    "TRADE_SUCCESS": "settled",
    "TRADE_FINISHED": "settled",
    "TRADE_CLOSED": "failed",
    "WAIT_BUYER_PAY": "pending",
}


def _payer(fields: dict) -> Payer | None:
    """The buyer a notification (``buyer_id``, 2088…) or a query (``buyer_user_id``) names, or
    ``buyer_open_id`` for applications Alipay gives open ids; ``buyer_logon_id`` (the Alipay
    account) arrives masked. A query's answer also carries ``buyer_user_name`` (the person's
    name, or a company's) for merchants Alipay agreed to return it to; the notification never
    does."""
    buyer = (
        fields.get("buyer_id") or fields.get("buyer_user_id") or fields.get("buyer_open_id") or ""
    )
    if not buyer:
        return None
    name = fields.get("buyer_user_name")
    return Payer(
        provider_id=buyer,
        label=masked(fields.get("buyer_logon_id") or buyer),
        name=name.strip()[:128] if isinstance(name, str) else "",
    )


def refund_request_no(payment) -> str:
    """One refund request per payment: Alipay refunds a repeated ``out_request_no`` once."""
    return f"{out_trade_no(payment)}_refund"


def notify_url() -> str:
    return settings.SITE_URL + reverse("payments:callback", args=[AlipayProvider.name])


class _Client(AliPay):
    """The SDK's client on a chosen gateway, with request times in Beijing time (the SDK
    uses the server's local time, which on a UTC server is eight hours off)."""

    def __init__(self, account: credentials.Account):
        try:
            super().__init__(
                appid=account.config["app_id"],
                app_notify_url=notify_url(),
                app_private_key_string=account.config["app_private_key"],
                alipay_public_key_string=account.config["alipay_public_key"],
                sign_type="RSA2",
                config=AliPayConfig(timeout=GATEWAY_TIMEOUT_SECONDS),
            )
        except (ValueError, TypeError, IndexError) as failure:
            raise ProviderError(f"The Alipay account's keys could not be read: {failure}") from None
        _point_at_gateway(self, account.gateway)

    def build_body(self, method, biz_content=None, **kwargs):
        body = super().build_body(method, biz_content, **kwargs)
        body["timestamp"] = dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        return body

    def page_url(self, method: str, biz_content: dict, return_url: str) -> str:
        body = self.build_body(method, biz_content, return_url=return_url)
        return f"{self._gateway}?{self.sign_data(body)}"

    def call(self, method: str, biz_content: dict) -> dict:
        """A server-to-server call; the answer's signature is checked by the SDK."""
        response_type = method.replace(".", "_") + "_response"
        try:
            return self.verified_sync_response(self.build_body(method, biz_content), response_type)
        except AliPayValidationError:
            raise ProviderError("Alipay's answer did not carry a valid signature.") from None
        except AliPayException as refusal:
            # Error answers without a signature; the SDK puts the raw answer in the message.
            raise ProviderError(f"Alipay refused {method}: {refusal}") from None
        except (OSError, ValueError) as failure:
            raise ProviderError(f"Alipay could not be reached for {method}: {failure}") from None


def _point_at_gateway(client: AliPay, gateway: str) -> None:
    """Send the client's requests to ``gateway``. python-alipay-sdk (pinned, 3.4.0) has no
    public option for it: ``AliPay.__init__`` fixes the private ``_gateway`` to production (or
    to Alipay's sandbox with ``debug=True``) and ``verified_sync_response`` builds every server
    call as ``self._gateway + "?" + query``. The one private attribute is set here because it
    is needed for: an account on Alipay's sandbox gateway and the local fake gateway every
    Alipay test runs against; a fork of the SDK would be far more to keep. If an upgrade
    renames it, setting ``_gateway`` on our subclass would still "work" for the pages we sign
    ourselves while the SDK's own calls (query, refund, close) went to production: so this
    refuses to build a client unless the SDK itself set ``_gateway`` (every Alipay call then
    fails with a ProviderError naming the cause), and
    ``tests/payments/test_alipay.py::test_the_sdk_still_takes_its_gateway_from_gateway`` fails."""
    if not isinstance(vars(client).get("_gateway"), str):
        raise ProviderError(
            "python-alipay-sdk no longer keeps its gateway in AliPay._gateway: update "
            "payments/providers/alipay.py for this SDK version."
        )
    client._gateway = gateway


def _account_for_payment(payment) -> credentials.Account:
    return account_for_payment(
        "alipay", payment, missing_message=_("No Alipay account is configured for this facility.")
    )


class AlipayProvider:
    name = "alipay"

    # --- the interface ------------------------------------------------------------------

    def create_payment(self, payment) -> str:
        """Nothing to register yet: Alipay's page is signed when the family opens our pay
        page, which knows whether it is a phone."""
        if credentials.account_for_facility(self.name, payment.deposit.facility_id) is None:
            raise ProviderError(_("Alipay is not available for this facility."))
        return reverse("payments:provider_pay", args=[self.name, payment.provider_reference])

    def checkout(self, payment, *, is_mobile: bool, client_ip: str, return_url: str) -> dict:
        """The signed URL of Alipay's payment page for this payment. Signed afresh on every
        visit (the request carries its own timestamp) under the account of the first one, so a
        reload reaches the same trade: Alipay knows it by ``out_trade_no``."""
        kind = "wap" if is_mobile else "page"
        account = _account_for_payment(payment)
        deposit = payment.deposit
        biz_content = {
            "subject": f"Commissary deposit {deposit.reference}",
            "out_trade_no": out_trade_no(payment),
            "total_amount": fen_to_yuan(payment.amount_fen),
            "product_code": "QUICK_WAP_WAY" if is_mobile else "FAST_INSTANT_TRADE_PAY",
            "time_expire": deposit.expires_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        }
        if is_mobile:
            # Where Alipay's phone page sends a family who leaves without paying.
            biz_content["quit_url"] = return_url
        method = "alipay.trade.wap.pay" if is_mobile else "alipay.trade.page.pay"
        url = _Client(account).page_url(method, biz_content, return_url)
        ProviderCheckout.objects.update_or_create(
            payment_id=payment.pk,
            kind=kind,
            defaults={"merchant_id": account.merchant_id, "pay_url": url},
        )
        return {"kind": kind, "url": url}

    def verify_callback(self, *, headers, body: bytes, now: dt.datetime) -> CallbackResult:
        try:
            # Empty values are signed as "k=", as Alipay's official verifiers check them
            # (alipay-sdk-nodejs's notifyRSACheck keeps every key, Java's
            # getSignCheckContentV1 every value): dropping them would refuse every
            # notification that carries an empty field.
            params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidCallback("The payment notification could not be read.") from None
        signature = params.pop("sign", "")
        # A notification without sign_type is RSA2, as the official SDKs assume; RSA (SHA-1) is
        # never accepted.
        if not signature or (params.get("sign_type") or "RSA2") != "RSA2":
            raise InvalidCallback()
        accounts = credentials.accounts_with_merchant_id(self.name, params.get("app_id", ""))
        verified = [account for account in accounts if _signed_by(account, params, signature)]
        if not verified:
            raise InvalidCallback()
        reference = reference_from_out_trade_no(params.get("out_trade_no", ""))
        payment = (
            Payment.objects.select_related("deposit")
            .filter(provider=self.name, provider_reference=reference)
            .first()
        )
        if payment is not None:
            expected = _account_for_payment(payment)
            if not any(_same_account(account, expected) for account in verified):
                raise InvalidCallback("The payment notification is for another merchant account.")
            seller_id = expected.config.get("seller_id")
            if seller_id and params.get("seller_id") != seller_id:
                raise InvalidCallback("The payment notification is for another seller.")
        try:
            amount_fen = yuan_to_fen(params.get("total_amount", ""))
        except MalformedAmount:
            raise InvalidCallback("The payment notification's amount could not be read.") from None
        return CallbackResult(
            provider_reference=reference,
            status=_STATUSES.get(params.get("trade_status", ""), "pending"),
            amount_fen=amount_fen,
            currency="CNY",
            payer=_payer(params),
        )

    def query_status(self, payment) -> StatusAnswer:
        answer = _Client(_account_for_payment(payment)).call(
            "alipay.trade.query", {"out_trade_no": out_trade_no(payment)}
        )
        if answer.get("code") != "10000":
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return StatusAnswer("pending")  # the family has not opened Alipay's page yet
            raise ProviderError(f"Alipay refused the query: {answer.get('sub_code')}")
        if answer.get("out_trade_no") != out_trade_no(payment):
            raise ProviderError("Alipay answered about another trade.")
        status = _STATUSES.get(answer.get("trade_status", ""), "pending")
        if status == "settled":
            try:
                amount_fen = yuan_to_fen(answer.get("total_amount", ""))
            except MalformedAmount:
                raise ProviderError("Alipay's amount could not be read.") from None
            if amount_fen != payment.amount_fen:
                raise ProviderError("Alipay reports another amount for this trade.")
        return StatusAnswer(status, _payer(answer))

    def refund_number(self, payment) -> str:
        return refund_request_no(payment)

    def refund(self, payment, *, request_number: str | None = None, reason: str = "") -> None:
        answer = _Client(_account_for_payment(payment)).call(
            "alipay.trade.refund",
            {
                "out_trade_no": out_trade_no(payment),
                "refund_amount": fen_to_yuan(payment.amount_fen),
                "out_request_no": request_number or refund_request_no(payment),
                "refund_reason": reason or "Deposit refunded",
            },
        )
        if answer.get("code") != "10000":
            raise ProviderError(f"Alipay refused the refund: {answer.get('sub_code')}")

    def close_order(self, payment) -> None:
        answer = _Client(_account_for_payment(payment)).call(
            "alipay.trade.close", {"out_trade_no": out_trade_no(payment)}
        )
        # A trade never opened at Alipay (the family never reached its page) has nothing to close.
        if answer.get("code") != "10000" and answer.get("sub_code") != "ACQ.TRADE_NOT_EXIST":
            raise ProviderError(f"Alipay refused to close the trade: {answer.get('sub_code')}")

    # --- the answers Alipay's server expects ----------------------------------------------

    def acknowledge(self, payment) -> HttpResponse:
        return HttpResponse("success", content_type="text/plain")

    def refuse(self, refusal) -> HttpResponse:
        # Anything but "success" makes Alipay send the notification again later.
        return HttpResponse("failure", content_type="text/plain", status=400)


def _signed_by(account: credentials.Account, params: dict, signature: str) -> bool:
    unsigned = {key: value for key, value in params.items() if key != "sign_type"}
    try:
        return _Client(account).verify(unsigned, signature)
    except (ValueError, TypeError, AliPayException, ProviderError):
        return False


def _same_account(left: credentials.Account, right: credentials.Account) -> bool:
    return left.facility_id == right.facility_id and left.merchant_id == right.merchant_id
