"""The family's receipt email on a real Celery worker, with Redis as the broker: the credit queues
the task and sends nothing itself; the worker, a separate process on its own connection, sends
the email once even when the broker delivers the message twice, and marks the payment."""

import re
import uuid

import pytest
from django.core import mail

from ledger.models import Deposit
from payments import services
from payments import tasks as payment_tasks
from payments.models import Payment
from tests.factories import InmateFactory
from tests.ledger.helpers import key
from tests.payments.helpers import approved_link, depositor

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_real_worker_sends_the_receipt_once_when_delivered_twice(
    broker, start_worker, wait_for, settings, queued_receipts
):
    settings.PAYMENTS_SANDBOX = True
    user = depositor()
    link = approved_link(user, InmateFactory())
    reserved, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=12_345, idempotency_key=key()
    )
    services.apply_provider_status(payment_id=reserved.payment.pk, status="settled")
    payment = Payment.objects.get(deposit_id=reserved.pk)
    assert Deposit.objects.get(pk=reserved.pk).status == Deposit.Status.CREDITED
    # The credit committed and queued the receipt; nothing was sent in this process.
    assert queued_receipts == [{"payment_id": payment.pk}]
    assert mail.outbox == []
    worker = start_worker(SITE_URL="https://pay.example.org")

    # The queued message, delivered twice as a broker that lost an acknowledgement would.
    task_id = str(uuid.uuid4())
    for _ in range(2):
        broker.send(payment_tasks.send_receipt, task_id=task_id, **queued_receipts[0])

    finished = re.compile(
        rf"payments\.tasks\.send_receipt\[{task_id}\] succeeded in [\d.e-]+s: (True|False)"
    )
    outcomes = wait_for(
        lambda: (found := finished.findall(worker.log())) and len(found) == 2 and found,
        what="both deliveries of the receipt task to finish",
    )
    assert sorted(outcomes) == ["False", "True"]
    log = worker.log()
    # The console mail backend prints each email the worker sent: exactly one, to the family.
    assert log.count(f"To: {user.email}") == 1
    assert f"https://pay.example.org/receipts/{reserved.reference}/verify" in log
    payment.refresh_from_db()
    assert payment.receipt_sent_at is not None
