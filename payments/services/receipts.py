"""Receipt emails of credited deposits: sent once by a worker, and swept up again when the
task that should have sent them never ran. Moves no money."""

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from ledger.batch import finish_run, recorded_run
from ledger.models import Deposit, ScheduledRun

from ..models import Payment
from ..receipts import send_receipt_email
from . import queueing

logger = logging.getLogger(__name__)

# The receipt sweep re-queues receipts of payments settled longer ago than this (the task queued
# at the credit had its chance) and more recently than RECEIPT_SWEEP_UNTIL (no old surprises).
RECEIPT_SWEEP_AFTER = dt.timedelta(minutes=10)
RECEIPT_SWEEP_UNTIL = dt.timedelta(days=7)


def send_receipt_once(*, payment_id: int) -> bool:
    """Email the family the receipt of a credited deposit, once per deposit. Returns whether it
    was sent now. Run by ``payments.tasks.send_receipt`` (queued when the deposit is credited);
    moves no money: the only row it writes is the payment's ``receipt_sent_at``.

    The payment row is locked for the send and ``receipt_sent_at`` set in the same transaction,
    so a second delivery of the task waits and then finds the receipt sent, and a failed send
    rolls the mark back for the task's retry. Only a worker dying between the mail server
    accepting the email and the commit can send it twice; marking it before sending instead
    would lose it then, and on every failure."""
    with transaction.atomic():
        # FOR NO KEY UPDATE, and no other lock in this transaction, so it cannot deadlock with
        # the money paths; a replayed callback's update skips the settled row without waiting.
        # (On the SQLite default the IMMEDIATE transaction makes writers wait for the send,
        # which EMAIL_TIMEOUT bounds.)
        payment = (
            Payment.objects.select_for_update(no_key=True)
            .filter(pk=payment_id)
            .only("receipt_sent_at")
            .first()
        )
        if payment is None or payment.receipt_sent_at is not None:
            return False
        if not Deposit.objects.filter(
            payment__pk=payment_id, status=Deposit.Status.CREDITED
        ).exists():
            return False  # held for review (or refunded): there is no credit to confirm
        send_receipt_email(payment_id=payment_id)
        Payment.objects.filter(pk=payment_id).update(receipt_sent_at=timezone.now())
    return True


def queue_unsent_receipts(
    *, now: dt.datetime | None = None, limit: int = 500, trigger: str = "schedule"
) -> ScheduledRun:
    """Queue the receipt task again for credited deposits whose receipt is still unsent: the
    broker was down when they were credited, or the task used up its retries. Only payments
    settled between ``RECEIPT_SWEEP_UNTIL`` and ``RECEIPT_SWEEP_AFTER`` ago, oldest first, at
    most ``limit`` a run. Sends nothing itself: the task's once-only guard makes a receipt
    queued twice (by the sweep and a replayed callback, or by two sweeps) go once."""
    now = now or timezone.now()
    with recorded_run(kind=ScheduledRun.Kind.RECEIPTS, trigger=trigger, now=now) as run:
        unsent = list(
            Payment.objects.filter(
                status=Payment.Status.SETTLED,
                # A deposit held for review is paid but not credited: its receipt waits for
                # the accept, which queues it.
                deposit__status=Deposit.Status.CREDITED,
                receipt_sent_at__isnull=True,
                settled_at__lte=now - RECEIPT_SWEEP_AFTER,
                settled_at__gt=now - RECEIPT_SWEEP_UNTIL,
            )
            .order_by("settled_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        queued = 0
        for payment_id in unsent:
            try:
                queueing.queue(queueing.SEND_RECEIPT, payment_id=payment_id)
            except Exception:  # the broker is down: the next run tries again
                logger.exception("the receipt email for payment %s was not queued", payment_id)
            else:
                queued += 1
        run.counts = {"receipts_unsent": len(unsent), "receipts_queued": queued}
        run.progress_done, run.progress_total = queued, len(unsent)
        finish_run(
            run,
            status=ScheduledRun.Status.SUCCEEDED
            if queued == len(unsent)
            else ScheduledRun.Status.FOUND_PROBLEMS,
        )
        logger.info("receipt sweep: %s unsent, %s queued", len(unsent), queued)
        return run


def queue_receipt(payment_id: int) -> None:
    """Queue the receipt task (after the credit's commit); a broker outage is logged, and the
    sweep queues it again later."""
    try:
        queueing.queue(queueing.SEND_RECEIPT, payment_id=payment_id)
    except Exception:  # the money is credited; a broker outage must not fail the callback
        logger.exception("the receipt email for payment %s was not queued", payment_id)
