"""The receipt sweep queues the receipt task again for credited deposits whose receipt was never
sent (the broker was down at the credit, or the task used up its retries): only those settled
more than ten minutes and less than seven days ago, oldest first, a bounded number a run. It
sends nothing itself; the task's once-only guard makes a receipt queued twice go once."""

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from ledger.models import ScheduledRun
from payments import services, tasks
from payments.models import Payment
from payments.services import queueing
from tests.factories import InmateFactory
from tests.ledger.helpers import key

from .helpers import approved_link, depositor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "https://pay.example.org"


def _payment(*, settled_ago: dt.timedelta, status: str = "settled", sent: bool = False) -> int:
    """A family deposit whose payment reached ``status`` ``settled_ago`` before now (the
    receipt task its credit queued is dropped, as when the broker was down)."""
    user = depositor()
    link = approved_link(user, InmateFactory())
    reserved, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=12_345, idempotency_key=key()
    )
    services.apply_provider_status(payment_id=reserved.payment.pk, status=status)
    payment = Payment.objects.get(deposit_id=reserved.pk)
    assert payment.status == status
    settled_at = timezone.now() - settled_ago
    Payment.objects.filter(pk=payment.pk).update(
        settled_at=settled_at, receipt_sent_at=settled_at if sent else None
    )
    return payment.pk


def test_only_recent_unsent_receipts_of_credited_deposits_older_than_ten_minutes_are_queued(
    queued_receipts,
):
    unsent = _payment(settled_ago=dt.timedelta(minutes=20))
    _payment(settled_ago=dt.timedelta(minutes=2))  # the task queued at the credit may still run
    _payment(settled_ago=dt.timedelta(minutes=20), sent=True)
    _payment(settled_ago=dt.timedelta(days=8))  # too old to surprise the family with now
    # A failed payment never credited anything (given a settled time, so only its status
    # keeps it out).
    _payment(settled_ago=dt.timedelta(minutes=20), status="failed")
    queued_receipts.clear()

    run = services.queue_unsent_receipts()

    assert queued_receipts == [{"payment_id": unsent}]
    assert mail.outbox == []  # the sweep only queues
    run.refresh_from_db()
    assert (run.kind, run.status) == (ScheduledRun.Kind.RECEIPTS, ScheduledRun.Status.SUCCEEDED)
    assert run.counts == {"receipts_unsent": 1, "receipts_queued": 1}
    assert Payment.objects.get(pk=unsent).receipt_sent_at is None


def test_two_sweeps_queue_the_same_receipt_twice_and_the_task_sends_it_once(queued_receipts):
    unsent = _payment(settled_ago=dt.timedelta(minutes=20))
    queued_receipts.clear()

    services.queue_unsent_receipts()
    services.queue_unsent_receipts()

    assert queued_receipts == [{"payment_id": unsent}, {"payment_id": unsent}]
    assert queued_receipts.run() == [True, False]
    assert len(mail.outbox) == 1
    assert Payment.objects.get(pk=unsent).receipt_sent_at is not None

    services.queue_unsent_receipts()
    assert queued_receipts == []  # sent: the next sweep queues nothing


def test_a_run_queues_at_most_its_limit_oldest_first(queued_receipts):
    newest = _payment(settled_ago=dt.timedelta(minutes=30))
    oldest = _payment(settled_ago=dt.timedelta(days=6))
    middle = _payment(settled_ago=dt.timedelta(hours=5))
    queued_receipts.clear()

    services.queue_unsent_receipts(limit=2)
    assert queued_receipts == [{"payment_id": oldest}, {"payment_id": middle}]

    queued_receipts.clear()
    services.queue_unsent_receipts()
    assert queued_receipts == [
        {"payment_id": oldest},
        {"payment_id": middle},
        {"payment_id": newest},
    ]


def test_a_receipt_the_broker_refused_is_counted_and_the_run_says_so(queued_receipts, monkeypatch):
    refused = _payment(settled_ago=dt.timedelta(hours=1))
    queued = _payment(settled_ago=dt.timedelta(minutes=30))
    queued_receipts.clear()

    def queue(task_name, **kwargs):
        if kwargs["payment_id"] == refused:
            raise ConnectionError("the broker is down")
        queued_receipts.append(kwargs)

    monkeypatch.setattr(queueing, "queue", queue)

    run = services.queue_unsent_receipts()

    assert queued_receipts == [{"payment_id": queued}]
    run.refresh_from_db()
    assert run.status == ScheduledRun.Status.FOUND_PROBLEMS
    assert run.counts == {"receipts_unsent": 2, "receipts_queued": 1}


def test_the_scheduled_task_runs_the_sweep(queued_receipts):
    unsent = _payment(settled_ago=dt.timedelta(minutes=20))
    queued_receipts.clear()

    result = tasks.queue_unsent_receipts.apply()

    assert result.state == "SUCCESS"
    assert ScheduledRun.objects.get(pk=result.result).kind == ScheduledRun.Kind.RECEIPTS
    assert queued_receipts == [{"payment_id": unsent}]
    assert tasks.queue_unsent_receipts.acks_late
