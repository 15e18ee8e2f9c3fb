"""Local fakes of Alipay's and WeChat Pay's gateways, served over real HTTP on a loopback port
by pytest-httpserver. Each holds RSA keys the test generated: it verifies the merchant's request
signatures with the merchant's public key and signs its own answers and notifications with the
provider's private key, so the adapters' real signing and verification code runs end to end.
They keep a small book of trades, as the real gateways do, and refuse what the real ones refuse
(a bad request signature, an unknown trade, a refund above the paid amount)."""

import base64
import datetime as dt
import functools
import html
import json
import os
import re
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from werkzeug import Request, Response


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str

    @classmethod
    def generate(cls) -> "KeyPair":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(
            private_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
            public_pem=key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode(),
        )

    @classmethod
    @functools.cache
    def shared(cls, name: str) -> "KeyPair":
        """One key pair per name for the whole test run (generating RSA keys is slow)."""
        return cls.generate()

    def sign(self, message: bytes) -> str:
        key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()

    def verify(self, message: bytes, signature: str) -> bool:
        key = serialization.load_pem_public_key(self.public_pem.encode())
        try:
            key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return False
        return True


def post(url: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def continue_url(answer) -> str:
    """The provider's page our pay page sends the browser on to."""
    match = re.search(r'id="continue-to-provider" href="([^"]+)"', answer.content.decode())
    return html.unescape(match[1])


# --- Alipay ------------------------------------------------------------------------------


def alipay_signed_string(params: dict, *, drop=("sign",), keep_empty=False) -> str:
    """What Alipay signs: the sorted ``k=v`` pairs. A notification keeps empty values as ``k=``
    (``keep_empty``), as the official verifiers check them."""
    return "&".join(
        f"{k}={v}" for k, v in sorted(params.items()) if k not in drop and (keep_empty or v != "")
    )


@dataclass
class AlipayTrade:
    out_trade_no: str
    total_amount: str
    method: str
    time_expire: str
    status: str = "WAIT_BUYER_PAY"
    trade_no: str = field(default_factory=lambda: uuid.uuid4().hex[:28])
    refunds: dict = field(default_factory=dict)  # out_request_no -> refund_amount
    # The buyer, as Alipay names them in notifications and queries (the logon id masked).
    buyer_id: str = "2088102177846875"
    buyer_logon_id: str = "159****5620"
    # The buyer's name: only in a query's answer, and only for merchants Alipay agreed to
    # return it to (None: not returned, Alipay's default).
    buyer_user_name: str | None = None


class FakeAlipay:
    """Alipay's gateway: ``alipay.trade.page.pay``/``wap.pay`` (a GET of the signed URL opens
    the trade), ``alipay.trade.query``, ``alipay.trade.refund``; ``notification`` builds the
    signed asynchronous notification a paid trade sends."""

    def __init__(self, httpserver, *, app_id="2021000000000001", seller_id="2088000000000001"):
        self.server = httpserver
        self.app_id = app_id
        self.seller_id = seller_id
        self.merchant = KeyPair.shared("alipay merchant")  # the application's key pair
        self.alipay = KeyPair.shared("alipay")  # Alipay's own key pair
        self.trades: dict[str, AlipayTrade] = {}
        self.requests: list[dict] = []
        httpserver.expect_request("/gateway.do").respond_with_handler(self._answer)

    @property
    def gateway(self) -> str:
        return self.server.url_for("/gateway.do")

    def account(self, **changes) -> dict:
        return {
            "app_id": self.app_id,
            "seller_id": self.seller_id,
            "app_private_key": self.merchant.private_pem,
            "alipay_public_key": self.alipay.public_pem,
            "gateway": self.gateway,
            **changes,
        }

    # the family's browser opens the signed page URL
    def open(self, url: str) -> AlipayTrade:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310
            assert answer.status == 200, answer.read()
        return self.trades[json.loads(self.requests[-1]["biz_content"])["out_trade_no"]]

    def pay(self, out_trade_no: str) -> AlipayTrade:
        trade = self.trades[out_trade_no]
        trade.status = "TRADE_SUCCESS"
        return trade

    def notification(self, trade: AlipayTrade, *, key: KeyPair | None = None, **changes) -> bytes:
        params = {
            "notify_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex,
            "app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "total_amount": trade.total_amount,
            "receipt_amount": trade.total_amount,
            "trade_status": trade.status,
            "buyer_id": trade.buyer_id,
            "buyer_logon_id": trade.buyer_logon_id,
            "seller_id": self.seller_id,
            "gmt_payment": time.strftime("%Y-%m-%d %H:%M:%S"),
            "subject": "Commissary deposit 测试",
            **changes,
        }
        params = {name: value for name, value in params.items() if value is not None}
        signed = alipay_signed_string(params, drop=("sign", "sign_type"), keep_empty=True)
        params["sign"] = (key or self.alipay).sign(signed.encode())
        return urllib.parse.urlencode(params).encode()

    # the gateway's side
    def _answer(self, request: Request) -> Response:
        params = dict(request.args.items(multi=False))
        self.requests.append(params)
        signature = params.get("sign", "")
        if params.get("app_id") != self.app_id or not self.merchant.verify(
            alipay_signed_string(params).encode(), signature
        ):
            return self._respond(params, {"code": "40002", "sub_code": "isv.invalid-signature"})
        biz = json.loads(params.get("biz_content", "{}"))
        method = params.get("method")
        if method in ("alipay.trade.page.pay", "alipay.trade.wap.pay"):
            self.trades.setdefault(
                biz["out_trade_no"],
                AlipayTrade(
                    out_trade_no=biz["out_trade_no"],
                    total_amount=biz["total_amount"],
                    method=method,
                    time_expire=biz.get("time_expire", ""),
                ),
            )
            return Response("<html><body>Alipay cashier</body></html>", content_type="text/html")
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._respond(params, {"code": "40004", "sub_code": "ACQ.TRADE_NOT_EXIST"})
        if method == "alipay.trade.query":
            return self._respond(
                params,
                {
                    "code": "10000",
                    "msg": "Success",
                    "out_trade_no": trade.out_trade_no,
                    "trade_no": trade.trade_no,
                    "trade_status": trade.status,
                    "total_amount": trade.total_amount,
                    "buyer_user_id": trade.buyer_id,
                    "buyer_logon_id": trade.buyer_logon_id,
                    **(
                        {"buyer_user_name": trade.buyer_user_name}
                        if trade.buyer_user_name is not None
                        else {}
                    ),
                },
            )
        if method == "alipay.trade.refund":
            if trade.status not in ("TRADE_SUCCESS", "TRADE_FINISHED", "TRADE_CLOSED"):
                refusal = {"code": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR"}
                return self._respond(params, refusal)
            request_no = biz["out_request_no"]
            fund_change = "N" if request_no in trade.refunds else "Y"
            trade.refunds.setdefault(request_no, biz["refund_amount"])
            trade.status = "TRADE_CLOSED"
            return self._respond(
                params,
                {
                    "code": "10000",
                    "msg": "Success",
                    "out_trade_no": trade.out_trade_no,
                    "refund_fee": biz["refund_amount"],
                    "fund_change": fund_change,
                },
            )
        return self._respond(params, {"code": "40004", "sub_code": "isv.invalid-method"})

    def _respond(self, params: dict, answer: dict) -> Response:
        response_type = params.get("method", "error").replace(".", "_") + "_response"
        inner = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        signature = self.alipay.sign(inner.encode())
        body = f'{{"{response_type}":{inner},"sign":"{signature}"}}'
        return Response(body, content_type="application/json;charset=utf-8")


# --- WeChat Pay ---------------------------------------------------------------------------


@dataclass
class WechatTrade:
    out_trade_no: str
    total: int
    kind: str
    time_expire: str
    state: str = "NOTPAY"
    transaction_id: str = field(default_factory=lambda: uuid.uuid4().hex[:28])
    refunds: dict = field(default_factory=dict)  # out_refund_no -> refund fen
    openid: str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the payer, one per payer and appid


class FakeWechatPay:
    """WeChat Pay's APIv3 gateway: Native and H5 orders, query by ``out_trade_no``, refunds;
    every answer signed with the platform key (``Wechatpay-*`` headers), every request's
    ``Authorization`` checked against the merchant's key. ``notification`` builds a signed
    callback with the resource encrypted (AES-256-GCM) under the APIv3 key."""

    def __init__(self, httpserver, *, mchid="1900000001", appid="wx0000000000000001"):
        self.server = httpserver
        self.mchid = mchid
        self.appid = appid
        self.merchant = KeyPair.shared("wechat merchant")
        self.platform = KeyPair.shared("wechat platform")
        self.merchant_serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
        self.public_key_id = "PUB_KEY_ID_0119000000000000000000000000000001"
        self.apiv3_key = "an-apiv3-key-of-32-characters-00"
        self.trades: dict[str, WechatTrade] = {}
        self.requests: list[dict] = []
        httpserver.expect_request(re.compile(r"^/v3/.*")).respond_with_handler(self._answer)

    @property
    def gateway(self) -> str:
        return self.server.url_for("").rstrip("/")

    def account(self, **changes) -> dict:
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "private_key": self.merchant.private_pem,
            "cert_serial_no": self.merchant_serial,
            "apiv3_key": self.apiv3_key,
            "platform_public_key": self.platform.public_pem,
            "platform_public_key_id": self.public_key_id,
            "gateway": self.gateway,
            **changes,
        }

    def pay(self, out_trade_no: str) -> WechatTrade:
        trade = self.trades[out_trade_no]
        trade.state = "SUCCESS"
        return trade

    def transaction(self, trade: WechatTrade, **changes) -> dict:
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "out_trade_no": trade.out_trade_no,
            "transaction_id": trade.transaction_id,
            "trade_type": trade.kind.upper(),
            "trade_state": trade.state,
            "trade_state_desc": "",
            "success_time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "payer": {"openid": trade.openid},
            "amount": {
                "total": trade.total,
                "payer_total": trade.total,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
            **changes,
        }

    def notification(
        self,
        trade: WechatTrade,
        *,
        key: KeyPair | None = None,
        apiv3_key: str | None = None,
        timestamp: int | None = None,
        serial: str | None = None,
        **changes,
    ) -> tuple[bytes, dict]:
        """The callback body and headers WeChat Pay would POST for ``trade``."""
        resource = json.dumps(self.transaction(trade, **changes)).encode()
        nonce = uuid.uuid4().hex[:12]
        associated = "transaction"
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), resource, associated.encode()
        )
        body = json.dumps(
            {
                "id": str(uuid.uuid4()),
                "create_time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "event_type": "TRANSACTION.SUCCESS",
                "resource_type": "encrypt-resource",
                "summary": "支付成功",
                "resource": {
                    "algorithm": "AEAD_AES_256_GCM",
                    "original_type": "transaction",
                    "associated_data": associated,
                    "nonce": nonce,
                    "ciphertext": base64.b64encode(ciphertext).decode(),
                },
            }
        ).encode()
        return body, self._signed_headers(body, key=key, timestamp=timestamp, serial=serial)

    def send_notification(self, url: str, trade: WechatTrade) -> int:
        body, headers = self.notification(trade)
        status, _answer = post(url, body, {"Content-Type": "application/json", **headers})
        return status

    def _signed_headers(self, body: bytes, *, key=None, timestamp=None, serial=None) -> dict:
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = base64.b16encode(os.urandom(16)).decode()
        message = f"{timestamp}\n{nonce}\n{body.decode()}\n".encode()
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": (key or self.platform).sign(message),
            "Wechatpay-Serial": serial or self.public_key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    # the gateway's side
    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _space, rest = header.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
        fields = {name: value.strip('"') for name, value in fields.items()}
        path = request.full_path.rstrip("?") if not request.query_string else request.full_path
        message = (
            f"{request.method}\n{path}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n"
            f"{request.get_data(as_text=True)}\n"
        )
        return (
            scheme == "WECHATPAY2-SHA256-RSA2048"
            and fields.get("mchid") == self.mchid
            and fields.get("serial_no") == self.merchant_serial
            and self.merchant.verify(message.encode(), fields.get("signature", ""))
        )

    def _respond(self, status: int, answer: dict | None) -> Response:
        body = json.dumps(answer).encode() if answer is not None else b""
        return Response(
            body,
            status=status,
            content_type="application/json",
            headers=self._signed_headers(body),
        )

    def _answer(self, request: Request) -> Response:
        self.requests.append({"method": request.method, "path": request.full_path})
        if not self._authorized(request):
            return self._respond(401, {"code": "SIGN_ERROR", "message": "bad signature"})
        path = request.path
        if request.method == "POST" and path in (
            "/v3/pay/transactions/native",
            "/v3/pay/transactions/h5",
        ):
            order = request.get_json()
            if order["mchid"] != self.mchid or order["appid"] != self.appid:
                return self._respond(400, {"code": "PARAM_ERROR", "message": "mchid"})
            kind = path.rsplit("/", 1)[1]
            trade = self.trades.setdefault(
                order["out_trade_no"],
                WechatTrade(
                    out_trade_no=order["out_trade_no"],
                    total=order["amount"]["total"],
                    kind=kind,
                    time_expire=order.get("time_expire", ""),
                ),
            )
            self.requests[-1]["order"] = order
            if kind == "native":
                return self._respond(
                    200, {"code_url": f"weixin://wxpay/bizpayurl?pr={trade.transaction_id}"}
                )
            return self._respond(200, {"h5_url": f"{self.gateway}/h5/{trade.transaction_id}"})
        prefix = "/v3/pay/transactions/out-trade-no/"
        if request.method == "GET" and path.startswith(prefix):
            trade = self.trades.get(path[len(prefix) :])
            if trade is None:
                return self._respond(404, {"code": "ORDER_NOT_EXIST", "message": "no order"})
            return self._respond(200, self.transaction(trade))
        if request.method == "POST" and path == "/v3/refund/domestic/refunds":
            refund = request.get_json()
            self.requests[-1]["refund"] = refund
            trade = self.trades.get(refund.get("out_trade_no", ""))
            if trade is None or trade.state not in ("SUCCESS", "REFUND"):
                return self._respond(404, {"code": "RESOURCE_NOT_EXISTS", "message": "no"})
            if refund["amount"]["refund"] > trade.total or refund["amount"]["total"] != trade.total:
                return self._respond(400, {"code": "PARAM_ERROR", "message": "amount"})
            trade.refunds.setdefault(refund["out_refund_no"], refund["amount"]["refund"])
            trade.state = "REFUND"
            return self._respond(
                200,
                {
                    "refund_id": uuid.uuid4().hex,
                    "out_refund_no": refund["out_refund_no"],
                    "status": "PROCESSING",
                    "amount": {"refund": refund["amount"]["refund"], "total": trade.total},
                },
            )
        return self._respond(404, {"code": "NOT_FOUND", "message": path})
