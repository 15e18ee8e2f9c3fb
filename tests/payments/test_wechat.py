"""WeChat Pay APIv3 end to end against a local fake gateway holding RSA keys generated here:
the adapter signs its requests (``WECHATPAY2-SHA256-RSA2048``), the SDK verifies every answer
with the platform key, and callbacks are verified over the signed message and decrypted with
the APIv3 key (AES-256-GCM), all through the real code. A paid deposit is credited once; a
forged, stale, replayed, changed, foreign or unknown callback credits nothing; the poll
recovers a lost callback; a late payment that no longer fits is refunded exactly once."""

import datetime as dt
import json
import time
import uuid

import pytest
import time_machine
from django.utils import timezone

from ledger import batch
from ledger.models import Account, Deposit, Transaction
from payments import payers, services
from payments.models import Payment
from payments.providers.wechat import WechatProvider
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit as credited_deposit
from tests.ledger.helpers import key

from .fake_gateways import FakeWechatPay, KeyPair, continue_url
from .helpers import approved_link, depositor

pytestmark = pytest.mark.django_db

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"


@pytest.fixture
def wechat(httpserver, settings):
    gateway = FakeWechatPay(httpserver)
    settings.PAYMENTS_WECHAT = gateway.account()
    settings.SITE_URL = "http://testserver"
    return gateway


def started(amount_fen=10_000, *, inmate=None):
    user = depositor()
    link = approved_link(user, inmate or InmateFactory())
    reserved, pay_url = services.start_deposit(
        depositor=user,
        link_id=link.pk,
        amount_fen=amount_fen,
        idempotency_key=key(),
        provider_name="wechat",
    )
    return Payment.objects.get(deposit=reserved), pay_url, user


def ordered(client, wechat, amount_fen=10_000, *, inmate=None, agent=DESKTOP):
    """A deposit started and its pay page opened, which places the order at the gateway."""
    payment, pay_url, user = started(amount_fen, inmate=inmate)
    client.force_login(user)
    answer = client.get(pay_url, headers={"User-Agent": agent})
    assert answer.status_code == 200, answer.content
    return payment, wechat.trades[uuid.UUID(payment.provider_reference).hex], answer


def notify(client, body: bytes, headers: dict):
    return client.post(
        "/payments/wechat/callback", data=body, content_type="application/json", headers=headers
    )


def spendable_fen(inmate_id):
    return Account.objects.get(inmate_id=inmate_id, kind="spendable").balance_fen


def test_native_order_is_shown_as_a_qr_code_with_the_deposits_reference_amount_and_expiry(
    client, wechat
):
    payment, trade, page = ordered(client, wechat, 12_345)
    order = wechat.requests[-1]["order"]
    assert order["out_trade_no"] == uuid.UUID(payment.provider_reference).hex == trade.out_trade_no
    assert order["amount"] == {"total": 12_345, "currency": "CNY"}
    assert order["notify_url"] == "http://testserver/payments/wechat/callback"
    expires = dt.datetime.fromisoformat(order["time_expire"])
    assert expires == payment.deposit.expires_at.replace(microsecond=0)
    assert expires.utcoffset() == dt.timedelta(hours=8)
    assert trade.kind == "native"
    assert b'id="wechat-qr"' in page.content
    assert b"data:image/svg+xml;base64," in page.content
    # A reload shows the same order's code, without placing another.
    again = client.get(f"/payments/wechat/pay/{payment.provider_reference}")
    assert again.status_code == 200
    assert len([r for r in wechat.requests if "order" in r]) == 1


def test_phone_gets_the_h5_payment_with_its_address(client, wechat):
    payment, trade, answer = ordered(client, wechat, agent=PHONE)
    assert trade.kind == "h5"
    assert answer.status_code == 200
    url = continue_url(answer)
    assert url.startswith(f"{wechat.gateway}/h5/")
    assert "redirect_url=" in url
    assert wechat.requests[-1]["order"]["scene_info"]["payer_client_ip"] == "127.0.0.1"


def test_paid_callback_credits_once_and_answers_204(client, wechat, assert_ledger_consistent):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    body, headers = wechat.notification(trade)
    for _ in range(3):  # WeChat Pay repeats a callback until it is acknowledged
        assert notify(client, body, headers).status_code == 204
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert payment.deposit.status == Deposit.Status.CREDITED
    assert Transaction.objects.filter(deposit=payment.deposit).count() == 1
    assert spendable_fen(payment.deposit.inmate_id) == 10_000
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"key": "forged"}, id="signed-with-another-key"),
        pytest.param({"apiv3_key": "another-apiv3-key-of-32-chars-01"}, id="other-apiv3-key"),
        pytest.param({"serial": "PUB_KEY_ID_UNKNOWN"}, id="unknown-key-serial"),
        pytest.param({"age_seconds": 301}, id="stale-timestamp"),
        pytest.param({"age_seconds": -301}, id="future-timestamp"),
        pytest.param({"amount_total": 10_001}, id="changed-amount"),
        pytest.param({"amount_total": 100.0}, id="float-amount"),
        pytest.param({"amount_total": "10000"}, id="string-amount"),
        pytest.param({"currency": "USD"}, id="changed-currency"),
        pytest.param({"mchid": "1900009999"}, id="other-mchid"),
        pytest.param({"appid": "wx9999999999999999"}, id="other-appid"),
        pytest.param({"out_trade_no": uuid.uuid4().hex}, id="unknown-trade"),
    ],
)
def test_untrustworthy_callback_is_refused_and_credits_nothing(
    client, wechat, tamper, ledger_snapshot
):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    tamper = dict(tamper)
    signing = {}
    if tamper.pop("key", None):
        signing["key"] = KeyPair.generate()
    for name in ("apiv3_key", "serial"):
        if name in tamper:
            signing[name] = tamper.pop(name)
    if "amount_total" in tamper or "currency" in tamper:
        amount = {"total": trade.total, "payer_total": trade.total, "currency": "CNY"}
        amount["total"] = tamper.pop("amount_total", trade.total)
        amount["currency"] = tamper.pop("currency", "CNY")
        tamper["amount"] = amount
    before = ledger_snapshot()
    # The clock stands still on a whole second while the notification is signed and checked:
    # a timestamp 301 s off stays 301 s off (with a running clock, int(time.time()) and the
    # time the check took made it 300 s under load, and the future case flaky).
    with time_machine.travel(int(time.time()), tick=False):
        if "age_seconds" in tamper:
            signing["timestamp"] = int(time.time()) - tamper.pop("age_seconds")
        body, headers = wechat.notification(trade, **signing, **tamper)
        answer = notify(client, body, headers)
    assert answer.status_code == 400
    assert answer.json()["code"] == "FAIL"
    assert ledger_snapshot() == before
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_callback_body_changed_after_signing_is_refused(client, wechat, ledger_snapshot):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    body, headers = wechat.notification(trade)
    changed = json.loads(body)
    changed["event_type"] = "TRANSACTION.CHANGED"
    before = ledger_snapshot()
    assert notify(client, json.dumps(changed).encode(), headers).status_code == 400
    assert ledger_snapshot() == before


def test_poll_credits_a_payment_whose_callback_was_lost(client, wechat, assert_ledger_consistent):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    assert services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5)) == 1
    assert wechat.requests[-1]["path"].startswith(
        f"/v3/pay/transactions/out-trade-no/{trade.out_trade_no}?mchid="
    )
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert spendable_fen(payment.deposit.inmate_id) == 10_000
    assert_ledger_consistent()


def test_poll_leaves_an_unordered_or_unpaid_payment_pending(client, wechat):
    unordered, _url, _user = started(10_000)
    unpaid, _trade, _page = ordered(client, wechat, 10_000)
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    for payment in (unordered, unpaid):
        payment.refresh_from_db()
        assert payment.status == Payment.Status.PENDING


def test_poll_does_not_trust_an_answer_with_a_bad_signature(client, wechat, ledger_snapshot):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    wechat.platform = KeyPair.generate()  # the gateway now signs with a key we do not know
    before = ledger_snapshot()
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    assert ledger_snapshot() == before
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_poll_refuses_a_query_answer_with_another_amount(client, wechat, ledger_snapshot):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    trade.total = 1_000_000
    before = ledger_snapshot()
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    assert ledger_snapshot() == before


def test_late_payment_that_no_longer_fits_is_refunded_once(
    client,
    wechat,
    assert_ledger_consistent,
    django_capture_on_commit_callbacks,
    queued_provider_calls,
):
    inmate = InmateFactory()
    payment, trade, _page = ordered(client, wechat, 60_000, inmate=inmate)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(hours=1))
    credited_deposit(inmate, 50_000)  # the month's room is now 500 yuan, less than 600
    wechat.pay(trade.out_trade_no)
    for _ in range(3):
        body, headers = wechat.notification(trade)
        with django_capture_on_commit_callbacks(execute=True):
            assert notify(client, body, headers).status_code == 204
    assert trade.refunds == {}  # decided and recorded; made by the worker after commit
    assert queued_provider_calls.run() == ["done"]
    assert queued_provider_calls.run() == []  # replayed callbacks queued nothing more
    payment.refresh_from_db()
    payment.deposit.refresh_from_db()
    assert payment.deposit.status == Deposit.Status.REFUNDED
    assert payment.status == Payment.Status.REFUNDED
    assert trade.refunds == {f"{trade.out_trade_no}R": 60_000}
    refunds = [r for r in wechat.requests if r["path"].startswith("/v3/refund/")]
    assert len(refunds) == 1
    # Refund results are not sent to the payment callback, which could not use them.
    assert "notify_url" not in refunds[0]["refund"]
    assert not Transaction.objects.filter(deposit=payment.deposit).exists()
    assert spendable_fen(inmate.pk) == 50_000
    assert_ledger_consistent()


def test_refund_is_idempotent_at_the_gateway_through_out_refund_no(client, wechat):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    WechatProvider().refund(payment)
    WechatProvider().refund(payment)
    assert trade.refunds == {f"{trade.out_trade_no}R": 10_000}


def test_requests_signed_with_another_merchant_key_are_refused_by_the_gateway(
    client, wechat, settings
):
    settings.PAYMENTS_WECHAT = wechat.account(private_key=KeyPair.generate().private_pem)
    payment, pay_url, user = started(10_000)
    client.force_login(user)
    answer = client.get(pay_url, headers={"User-Agent": DESKTOP})
    assert answer.status_code == 502
    assert wechat.trades == {}
    assert payment.checkouts.count() == 0


def test_each_visit_on_a_phone_asks_for_a_fresh_h5_url(client, wechat):
    """An h5_url lives about five minutes: a reload places the order again for a new one,
    where a computer's QR code (valid two hours) is shown again as it was."""
    payment, _trade, _first = ordered(client, wechat, agent=PHONE)
    again = client.get(
        f"/payments/wechat/pay/{payment.provider_reference}", headers={"User-Agent": PHONE}
    )
    assert again.status_code == 200
    h5_orders = [r for r in wechat.requests if r["path"].startswith("/v3/pay/transactions/h5")]
    assert len(h5_orders) == 2
    assert h5_orders[0]["order"]["out_trade_no"] == h5_orders[1]["order"]["out_trade_no"]
    assert payment.checkouts.filter(kind="h5").count() == 1
    native = client.get(
        f"/payments/wechat/pay/{payment.provider_reference}", headers={"User-Agent": DESKTOP}
    )
    reload = client.get(
        f"/payments/wechat/pay/{payment.provider_reference}", headers={"User-Agent": DESKTOP}
    )
    assert native.status_code == reload.status_code == 200
    native_orders = [
        r for r in wechat.requests if r["path"].startswith("/v3/pay/transactions/native")
    ]
    assert len(native_orders) == 1


def test_the_sdk_still_takes_its_gateway_from_core_gate_way(wechat, monkeypatch):
    """The adapter points wechatpayv3 at a gateway through its private ``Core._gate_way``
    (wechat.py says why). This fails loudly when an upgrade moves it: the client must reach the
    configured gateway, never production."""
    import requests

    from payments import credentials
    from payments.providers import wechat as adapter

    account = credentials.Account("wechat", None, wechat.account(gateway="http://127.0.0.1:9"))
    asked = []

    def get(url, **kwargs):
        asked.append(url)
        raise requests.ConnectionError("nothing listens there")

    monkeypatch.setattr(requests, "get", get)
    client = adapter._client(account)
    assert client._core._gate_way == "http://127.0.0.1:9"
    with pytest.raises(Exception, match="nothing listens there"):
        client.query(out_trade_no="0" * 32)
    assert asked == [
        f"http://127.0.0.1:9/v3/pay/transactions/out-trade-no/{'0' * 32}?mchid={wechat.mchid}"
    ]


def test_a_client_is_refused_when_the_sdk_no_longer_has_the_gateway_attribute(wechat, monkeypatch):
    from wechatpayv3.core import Core

    from payments import credentials
    from payments.providers import ProviderError
    from payments.providers import wechat as adapter

    original = Core.__init__

    def renamed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._gateway_url = self.__dict__.pop("_gate_way")

    monkeypatch.setattr(Core, "__init__", renamed)
    account = credentials.Account("wechat", None, wechat.account())
    with pytest.raises(ProviderError, match="Core._gate_way"):
        adapter._client(account)


def test_the_callback_keeps_the_payers_openid_only_as_a_keyed_hash(client, wechat):
    payment, trade, _page = ordered(client, wechat, 10_000)
    wechat.pay(trade.out_trade_no)
    body, headers = wechat.notification(trade)
    assert notify(client, body, headers).status_code == 204
    payment.refresh_from_db()
    assert payment.payer_fingerprint == payers.fingerprint("wechat", trade.openid)
    assert payment.payer_label == "oUpF****eS6o"
    assert payment.payer_name == ""  # WeChat Pay names no payer: the openid is all it gives
    row = Payment.objects.filter(pk=payment.pk).values().get()
    assert not any(trade.openid in str(column) for column in row.values())


def test_the_poll_keeps_the_payer_wechat_pay_names_in_its_query_answer(client, wechat):
    payment, trade, _page = ordered(client, wechat, 10_000)
    trade.openid = "oUpF8another-payer-openid000"
    wechat.pay(trade.out_trade_no)
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert payment.payer_fingerprint == payers.fingerprint("wechat", trade.openid)
