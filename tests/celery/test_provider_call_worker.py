"""The provider outbox on a real Celery worker, with Redis as the broker: a late payment that no
longer fits is decided refunded in the callback's transaction, which queues the call and makes
none; the worker, a separate process, makes the refund at the (fake, real-HTTP) Alipay gateway
after the commit, once even when the broker delivers the message twice, and marks the row."""

import datetime as dt
import re
import uuid

import pytest
from django.utils import timezone

from ledger import batch
from ledger.models import Account, Deposit
from payments import services
from payments import tasks as payment_tasks
from payments.models import Payment, ProviderCall
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit as credited_deposit
from tests.payments.fake_gateways import FakeAlipay
from tests.payments.test_alipay_and_wechat_races import _ordered

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_real_worker_makes_the_refund_once_when_delivered_twice(
    broker, start_worker, wait_for, settings, httpserver, queued_provider_calls
):
    alipay = FakeAlipay(httpserver)
    account = alipay.account()
    settings.PAYMENTS_ALIPAY = account
    settings.SITE_URL = "http://testserver"
    inmate = InmateFactory()
    payment = _ordered("alipay", 60_000, inmate, alipay)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(hours=1))
    credited_deposit(inmate, 50_000)
    trade = alipay.pay(uuid.UUID(payment.provider_reference).hex)

    services.apply_provider_status(payment_id=payment.pk, status="settled")

    # Decided and committed: the deposit is refunded, the call queued, the gateway not called.
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.REFUNDED
    call = ProviderCall.objects.get(payment=payment)
    assert queued_provider_calls == [{"call_id": call.pk}]
    assert trade.refunds == {}
    worker = start_worker(
        ALIPAY_APP_ID=account["app_id"],
        ALIPAY_SELLER_ID=account["seller_id"],
        ALIPAY_APP_PRIVATE_KEY=account["app_private_key"],
        ALIPAY_PUBLIC_KEY=account["alipay_public_key"],
        ALIPAY_GATEWAY=account["gateway"],
    )

    task_id = str(uuid.uuid4())
    for _ in range(2):  # as a broker that lost an acknowledgement would deliver it
        broker.send(payment_tasks.make_provider_call, task_id=task_id, **queued_provider_calls[0])

    finished = re.compile(
        rf"payments\.tasks\.make_provider_call\[{task_id}\] succeeded in [\d.e-]+s: (\S+)"
    )
    outcomes = wait_for(
        lambda: (found := finished.findall(worker.log())) and len(found) == 2 and found,
        what="both deliveries of the provider call to finish",
    )
    # One delivery made the call and returned its state, the other returned None. Celery's line
    # shows no string a task returns (docs/operations.md, "A task's arguments and result"): the
    # state is masked there, and the row below says it is done.
    assert sorted(outcomes) == ["<masked>", "None"]
    assert trade.refunds == {f"{trade.out_trade_no}_refund": "600.00"}
    refunds = [r for r in alipay.requests if r.get("method") == "alipay.trade.refund"]
    assert len(refunds) == 1
    call.refresh_from_db()
    assert (call.state, call.attempts, call.last_error) == ("done", 1, "")
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.REFUNDED
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 50_000
