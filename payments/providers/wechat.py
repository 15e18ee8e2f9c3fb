"""WeChat Pay (微信支付) APIv3 behind the provider interface, through ``wechatpayv3``.

- Native payment on a computer: the order's ``code_url`` is shown as a QR code on our pay page,
  to scan with WeChat. H5 payment on a phone: the family is sent to the order's ``h5_url``.
  ``out_trade_no`` is the deposit's reference (32 hex digits: WeChat Pay allows at most 32
  characters) and ``time_expire`` the reservation's expiry. Amounts are integer fen.
- Every request is signed ``WECHATPAY2-SHA256-RSA2048`` with the merchant's API key, and every
  answer's ``Wechatpay-*`` signature is checked by the SDK against the platform public key.
- The callback is verified over ``timestamp\\nnonce\\nbody\\n`` with the platform public key
  named by ``Wechatpay-Serial`` (refused more than five minutes from now), its resource
  decrypted with the APIv3 key (AES-256-GCM), and refused for another ``mchid`` or ``appid``,
  an amount that is not exactly the payment's, or an account other than the order's.
- The poll queries by ``out_trade_no``; refunds use ``out_refund_no`` fixed per payment, so a
  retried refund returns the money once.

The account's platform key is configured, never downloaded: WeChat Pay's platform public key
(``PUB_KEY_ID_…``) or, for older merchants, the platform certificate's public key with its
serial number as the key id. So constructing the SDK's client does no network I/O, and the
client is pointed at the account's gateway (production, or a local fake in the tests) by
setting its gateway after construction (``_point_at_gateway``): its constructor knows only the
production URL.
"""

import datetime as dt
import json
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from wechatpayv3 import WeChatPay, WeChatPayType

from .. import credentials
from ..amounts import MalformedAmount, wechat_fen
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
TOLERANCE = dt.timedelta(minutes=5)
GATEWAY_TIMEOUT_SECONDS = (5, 10)  # connect, read
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
_STATUSES = {
    "SUCCESS": "settled",
    "REFUND": "settled",  # paid, then refunded: the refund is ours, recorded on the payment
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "CLOSED": "failed",
    "REVOKED": "failed",
    "PAYERROR": "failed",
}


def _payer(transaction: dict) -> Payer | None:
    """The payer's ``openid`` (one per payer and our appid) a transaction names: all WeChat
    Pay's APIv3 says of the payer, in the payment notification's resource and the order query
    alike (``payer`` holds ``openid`` only; no name, no masked account)."""
    payer = transaction.get("payer")
    openid = payer.get("openid") if isinstance(payer, dict) else None
    if not openid or not isinstance(openid, str):
        return None
    return Payer(provider_id=openid, label=masked(openid))


def refund_number(payment) -> str:
    return f"{out_trade_no(payment)}R"


def notify_url() -> str:
    return settings.SITE_URL + reverse("payments:callback", args=[WechatProvider.name])


def _client(account: credentials.Account, *, notify: bool = True) -> WeChatPay:
    """The SDK's client for ``account``. ``notify=False`` for refunds: their notifications
    would come to the payment callback, which has nothing to learn from them."""
    config = account.config
    try:
        client = WeChatPay(
            wechatpay_type=WeChatPayType.NATIVE,
            mchid=config["mchid"],
            private_key=config["private_key"],
            cert_serial_no=config["cert_serial_no"],
            appid=config["appid"],
            apiv3_key=config["apiv3_key"],
            notify_url=notify_url() if notify else None,
            timeout=GATEWAY_TIMEOUT_SECONDS,
            public_key=config["platform_public_key"],
            public_key_id=config["platform_public_key_id"],
        )
    except Exception as failure:  # the SDK raises bare exceptions for unreadable keys
        raise ProviderError(f"The WeChat Pay account's keys could not be read: {failure}") from None
    _point_at_gateway(client, account.gateway)
    return client


def _point_at_gateway(client: WeChatPay, gateway: str) -> None:
    """Send the client's requests to ``gateway``. wechatpayv3 (pinned, 2.0.4) has no public
    option for it: its Core fixes ``_gate_way`` to production in ``__init__`` and builds every
    request URL as ``self._gate_way + path``. The one private attribute is set here because it
    is needed for: WeChat Pay's backup domain (api2.mch.weixin.qq.com, which its docs tell
    merchants to switch to when the main one fails) and the local fake gateway every WeChat Pay
    test runs against; the alternative, a fork of the SDK, would be far more to keep. If an
    upgrade renames it, this refuses to build a client (every WeChat Pay call fails with a
    ProviderError naming the cause) instead of silently sending requests to production, and
    ``tests/payments/test_wechat.py::test_the_sdk_still_takes_its_gateway_from_core_gate_way``
    fails."""
    core = getattr(client, "_core", None)
    if not isinstance(getattr(core, "_gate_way", None), str):
        raise ProviderError(
            "wechatpayv3 no longer keeps its gateway in Core._gate_way: update "
            "payments/providers/wechat.py for this SDK version."
        )
    core._gate_way = gateway


def _call(what: str, request) -> tuple[int, dict]:
    """One SDK call; the SDK checks the answer's signature for every 2xx answer."""
    try:
        status, text = request()
    except Exception as failure:  # network errors and the SDK's bare signature exception
        raise ProviderError(f"WeChat Pay could not be asked to {what}: {failure}") from None
    try:
        answer = json.loads(text) if text else {}
    except (TypeError, ValueError):
        answer = {}
    return status, answer


def _account_for_payment(payment) -> credentials.Account:
    return account_for_payment(
        "wechat",
        payment,
        missing_message=_("No WeChat Pay account is configured for this facility."),
    )


class WechatProvider:
    name = "wechat"

    # --- the interface ------------------------------------------------------------------

    def create_payment(self, payment) -> str:
        """The order is placed when the family opens our pay page, which knows whether it is
        a phone (H5, with the payer's address) or a computer (Native, a QR code)."""
        if credentials.account_for_facility(self.name, payment.deposit.facility_id) is None:
            raise ProviderError(_("WeChat Pay is not available for this facility."))
        return reverse("payments:provider_pay", args=[self.name, payment.provider_reference])

    def checkout(self, payment, *, is_mobile: bool, client_ip: str, return_url: str) -> dict:
        """A Native order's ``code_url`` (valid two hours) is kept and shown again on a reload.
        An H5 order's ``h5_url`` lives about five minutes, so each visit places the order again
        (the same ``out_trade_no`` and amount: WeChat Pay answers a fresh ``h5_url`` for the
        same order), as WeChat Pay's H5 documentation asks."""
        kind = "h5" if is_mobile else "native"
        existing = ProviderCheckout.objects.filter(payment_id=payment.pk, kind=kind).first()
        if existing is not None and not is_mobile:
            return {"kind": kind, "url": existing.pay_url}
        account = _account_for_payment(payment)
        deposit = payment.deposit
        order = {
            "description": f"Commissary deposit {deposit.reference}"[:127],
            "out_trade_no": out_trade_no(payment),
            "amount": {"total": payment.amount_fen, "currency": payment.currency},
            "time_expire": deposit.expires_at.astimezone(BEIJING).isoformat(timespec="seconds"),
        }
        if is_mobile:
            order["scene_info"] = {"payer_client_ip": client_ip, "h5_info": {"type": "Wap"}}
        pay_type = WeChatPayType.H5 if is_mobile else WeChatPayType.NATIVE
        status, answer = _call(
            "place the order", lambda: _client(account).pay(pay_type=pay_type, **order)
        )
        url = answer.get("h5_url" if is_mobile else "code_url")
        if status != 200 or not url:
            raise ProviderError(f"WeChat Pay refused the order: {answer.get('code')}")
        if is_mobile:
            # After paying, WeChat sends the phone back to the deposit's page.
            separator = "&" if "?" in url else "?"
            url = f"{url}{separator}redirect_url={quote(return_url, safe='')}"
        if is_mobile:
            ProviderCheckout.objects.update_or_create(
                payment_id=payment.pk,
                kind=kind,
                defaults={"merchant_id": account.merchant_id, "pay_url": url},
            )
            return {"kind": kind, "url": url}
        checkout, _created = ProviderCheckout.objects.get_or_create(
            payment_id=payment.pk,
            kind=kind,
            defaults={"merchant_id": account.merchant_id, "pay_url": url},
        )
        return {"kind": kind, "url": checkout.pay_url}

    def verify_callback(self, *, headers, body: bytes, now: dt.datetime) -> CallbackResult:
        serial = headers.get("Wechatpay-Serial", "")
        try:
            timestamp = int(headers.get("Wechatpay-Timestamp", ""))
        except ValueError:
            raise InvalidCallback() from None
        if headers.get("Wechatpay-Signature-Type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise InvalidCallback()
        if abs(now.timestamp() - timestamp) > TOLERANCE.total_seconds():
            raise InvalidCallback("The payment notification is too old or from the future.")
        # The serial names the platform key; only configured keys are tried, so a callback
        # never makes the SDK download certificates.
        accounts = [
            account
            for account in credentials.all_accounts(self.name)
            if account.config.get("platform_public_key_id") == serial
        ]
        transaction = None
        for account in accounts:
            transaction = _decrypted(account, headers, body)
            if transaction is not None:
                break
        if transaction is None:
            raise InvalidCallback()
        if transaction.get("mchid") != account.config["mchid"] or transaction.get(
            "appid"
        ) != account.config.get("appid"):
            raise InvalidCallback("The payment notification is for another merchant account.")
        reference = reference_from_out_trade_no(transaction.get("out_trade_no"))
        payment = (
            Payment.objects.select_related("deposit")
            .filter(provider=self.name, provider_reference=reference)
            .first()
        )
        if payment is not None:
            expected = _account_for_payment(payment)
            if (expected.facility_id, expected.merchant_id) != (
                account.facility_id,
                account.merchant_id,
            ):
                raise InvalidCallback("The payment notification is for another merchant account.")
        amount = transaction.get("amount") or {}
        try:
            amount_fen = wechat_fen(amount.get("total"))
        except MalformedAmount:
            raise InvalidCallback("The payment notification's amount could not be read.") from None
        return CallbackResult(
            provider_reference=reference,
            status=_STATUSES.get(transaction.get("trade_state", ""), "pending"),
            amount_fen=amount_fen,
            currency=str(amount.get("currency", "")),
            payer=_payer(transaction),
        )

    def query_status(self, payment) -> StatusAnswer:
        account = _account_for_payment(payment)
        status, answer = _call(
            "look up the order",
            lambda: _client(account).query(out_trade_no=out_trade_no(payment)),
        )
        if status == 404 and answer.get("code") == "ORDER_NOT_EXIST":
            return StatusAnswer("pending")
        if status != 200:
            raise ProviderError(f"WeChat Pay refused the query: {answer.get('code')}")
        if (
            answer.get("out_trade_no") != out_trade_no(payment)
            or answer.get("mchid") != (account.config["mchid"])
        ):
            raise ProviderError("WeChat Pay answered about another order.")
        result = _STATUSES.get(answer.get("trade_state", ""), "pending")
        if result == "settled":
            amount = answer.get("amount") or {}
            try:
                amount_fen = wechat_fen(amount.get("total"))
            except MalformedAmount:
                raise ProviderError("WeChat Pay's amount could not be read.") from None
            if amount_fen != payment.amount_fen or amount.get("currency") != payment.currency:
                raise ProviderError("WeChat Pay reports another amount for this order.")
        return StatusAnswer(result, _payer(answer))

    def refund_number(self, payment) -> str:
        return refund_number(payment)

    def refund(self, payment, *, request_number: str | None = None, reason: str = "") -> None:
        account = _account_for_payment(payment)
        status, answer = _call(
            "refund",
            lambda: _client(account, notify=False).refund(
                out_refund_no=request_number or refund_number(payment),
                out_trade_no=out_trade_no(payment),
                amount={
                    "refund": payment.amount_fen,
                    "total": payment.amount_fen,
                    "currency": payment.currency,
                },
                reason=reason or "Deposit refunded",
            ),
        )
        if status != 200:
            raise ProviderError(f"WeChat Pay refused the refund: {answer.get('code')}")

    def close_order(self, payment) -> None:
        account = _account_for_payment(payment)
        status, answer = _call(
            "close the order", lambda: _client(account).close(out_trade_no=out_trade_no(payment))
        )
        if status not in (200, 204) and answer.get("code") != "ORDER_NOT_EXIST":
            raise ProviderError(f"WeChat Pay refused to close the order: {answer.get('code')}")

    # --- the answers WeChat Pay's server expects ---------------------------------------------

    def acknowledge(self, payment) -> HttpResponse:
        return HttpResponse(status=204)

    def refuse(self, refusal) -> JsonResponse:
        # A 4xx answer makes WeChat Pay send the notification again later.
        return JsonResponse({"code": "FAIL", "message": str(refusal.message)}, status=400)


def _decrypted(account: credentials.Account, headers, body: bytes) -> dict | None:
    """The callback's transaction if ``account``'s platform key signed it and its APIv3 key
    decrypts it, else None."""
    wanted = {
        name: headers.get(name, "")
        for name in (
            "Wechatpay-Signature",
            "Wechatpay-Timestamp",
            "Wechatpay-Nonce",
            "Wechatpay-Serial",
        )
    }
    wanted["Wechatpay-Signature-Type"] = headers.get("Wechatpay-Signature-Type", SIGNATURE_TYPE)
    try:
        answer = _client(account).callback(wanted, body)
    except Exception:  # bad base64, unreadable JSON, an unknown algorithm
        return None
    if not answer or not isinstance(answer.get("resource"), dict):
        return None
    return answer["resource"]
