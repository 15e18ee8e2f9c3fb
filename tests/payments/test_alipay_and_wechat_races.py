"""Real-provider notifications racing on PostgreSQL: the same signed notification delivered
several times at once, and racing the status poll, credits the deposit once; a late payment
that no longer fits, notified several times at once, is refunded at the gateway once. Threads
start behind a barrier; the money is read back from the database."""

import datetime as dt
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from ledger import batch
from ledger.models import Account, Deposit, Transaction
from ledger.reconciliation import run_checks
from payments import services
from payments.models import Payment
from tests.concurrency.conftest import _run_together
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit as credited_deposit
from tests.ledger.helpers import key

from .fake_gateways import FakeAlipay, FakeWechatPay, continue_url
from .helpers import approved_link, depositor

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gateways(httpserver, settings):
    alipay, wechat = FakeAlipay(httpserver), FakeWechatPay(httpserver)
    settings.PAYMENTS_ALIPAY = alipay.account()
    settings.PAYMENTS_WECHAT = wechat.account()
    settings.SITE_URL = "http://testserver"
    return alipay, wechat


def _ordered(provider_name, amount_fen, inmate, gateway):
    """A deposit started and its pay page opened (for Alipay, the page it links to too), so
    the trade exists at the fake gateway."""
    user = depositor()
    link = approved_link(user, inmate)
    reserved, pay_url = services.start_deposit(
        depositor=user,
        link_id=link.pk,
        amount_fen=amount_fen,
        idempotency_key=key(),
        provider_name=provider_name,
    )
    client = Client()
    client.force_login(user)
    page = client.get(pay_url)
    assert page.status_code == 200
    if provider_name == "alipay":
        gateway.open(continue_url(page))
    return Payment.objects.get(deposit=reserved)


def _post_alipay(body):
    return Client().post(
        "/payments/alipay/callback", data=body, content_type="application/x-www-form-urlencoded"
    )


def test_one_alipay_notification_delivered_four_times_at_once_and_a_poll_credit_once(gateways):
    alipay, _wechat = gateways
    inmate = InmateFactory()
    payment = _ordered("alipay", 10_000, inmate, alipay)
    trade = alipay.pay(uuid.UUID(payment.provider_reference).hex)
    body = alipay.notification(trade)
    later = timezone.now() + dt.timedelta(minutes=5)

    outcomes = _run_together(
        [lambda: _post_alipay(body) for _ in range(4)]
        + [lambda: services.poll_pending_payments(now=later)]
    )

    assert all(outcome.succeeded for outcome in outcomes), [o.error for o in outcomes]
    assert [outcome.value.content for outcome in outcomes[:4]] == [b"success"] * 4
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert payment.deposit.status == Deposit.Status.CREDITED
    assert Transaction.objects.filter(deposit=payment.deposit).count() == 1
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 10_000
    assert run_checks() == []


def test_late_wechat_payment_notified_four_times_at_once_is_refunded_once(
    gateways, queued_provider_calls
):
    _alipay, wechat = gateways
    inmate = InmateFactory()
    payment = _ordered("wechat", 60_000, inmate, wechat)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(hours=1))
    credited_deposit(inmate, 50_000)
    trade = wechat.pay(uuid.UUID(payment.provider_reference).hex)
    body, headers = wechat.notification(trade)

    def post():
        return Client().post(
            "/payments/wechat/callback", data=body, content_type="application/json", headers=headers
        )

    outcomes = _run_together([post for _ in range(4)])

    assert all(outcome.succeeded for outcome in outcomes), [o.error for o in outcomes]
    assert [outcome.value.status_code for outcome in outcomes] == [204] * 4
    # One refund decided and queued after its commit, made by the worker (here, this thread).
    assert queued_provider_calls.run() == ["done"]
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    assert payment.deposit.status == Deposit.Status.REFUNDED
    assert trade.refunds == {f"{trade.out_trade_no}R": 60_000}
    assert len([r for r in wechat.requests if r["path"].startswith("/v3/refund/")]) == 1
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 50_000
    assert run_checks() == []
