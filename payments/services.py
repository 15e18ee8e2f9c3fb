"""Every write of the payments app: starting a family deposit at a provider, and turning what
the provider says (a signed callback or a status poll) into ledger calls.

Money moves only in the ledger (``ledger.services``): a settled payment credits its deposit,
or, when it settled after the deposit was released and no longer fits, is refunded through the
provider (DESIGN "Deposits and payments"). Every step is idempotent, so a callback replayed, a
callback racing a poll, or a poll repeated moves money once. Each function runs the ledger call
first inside its own ``transaction.atomic()``, so the inmate's accounts are locked before the
payment row is written. The family's receipt email is sent by a Celery task queued once the
credit has committed, never inside the callback.
"""

import contextlib
import datetime as dt
import logging

from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import selectors as account_selectors
from commissary import errors
from commissary.money import format_fen
from ledger import selectors as ledger_selectors
from ledger import services as ledger
from ledger.batch import finish_run, recorded_run
from ledger.models import Deposit, ScheduledRun

from .models import Payment
from .providers import get_provider
from .providers.base import InvalidCallback

logger = logging.getLogger(__name__)

# How long a payment may stay pending before the poll asks the provider about it, and until
# when after its deposit's expiry it keeps asking (a payment may settle late).
POLL_AFTER = dt.timedelta(minutes=2)
POLL_UNTIL = dt.timedelta(days=2)
# The receipt sweep re-queues receipts of payments settled longer ago than this (the task queued
# at the credit had its chance) and more recently than RECEIPT_SWEEP_UNTIL (no old surprises).
RECEIPT_SWEEP_AFTER = dt.timedelta(minutes=10)
RECEIPT_SWEEP_UNTIL = dt.timedelta(days=7)


class OverDepositRoom(errors.DomainError):
    code = "over_deposit_room"
    default_message = gettext_lazy("This is more than can be sent now.")

    def __init__(self, message: str | None = None, *, can_send_fen: int = 0):
        super().__init__(message)
        self.can_send_fen = can_send_fen


_ROOM_REFUSALS = (
    errors.MonthlyCapExceeded,
    errors.BalanceCapExceeded,
    errors.DepositOverSingleLimit,
    errors.MonthlyDepositCountExceeded,
)


def most_that_can_be_sent_message(can_send_fen: int, currency: str) -> str:
    if can_send_fen <= 0:
        return _("Nothing more can be sent to this person now.")
    return _("The most that can be sent now is %(amount)s.") % {
        "amount": format_fen(can_send_fen, currency)
    }


def start_deposit(
    *,
    depositor,
    link_id: int,
    amount_fen: int,
    idempotency_key: str,
    provider_name: str = "sandbox",
    now: dt.datetime | None = None,
) -> tuple[Deposit, str]:
    """Reserve a family deposit under both caps and register its payment at the provider.
    Returns the deposit and the URL the family pays at. A repeat with the same key returns
    the first deposit. Refuses an amount above what may be sent now (the room shown to the
    family), reserving nothing."""
    now = now or timezone.now()
    link = account_selectors.deposit_link_for(depositor=depositor, link_id=link_id)
    provider = get_provider(provider_name)
    existing = Deposit.objects.filter(
        idempotency_scope=ledger.depositor_scope(depositor.pk), idempotency_key=idempotency_key
    ).first()
    if existing is None:
        room = ledger_selectors.deposit_room(inmate=link.inmate, now=now)
        if amount_fen > room.can_send_fen:
            raise OverDepositRoom(
                most_that_can_be_sent_message(room.can_send_fen, link.inmate.facility.currency),
                can_send_fen=room.can_send_fen,
            )
    with transaction.atomic():
        try:
            deposit = ledger.reserve_deposit(
                inmate_id=link.inmate_id,
                amount_fen=amount_fen,
                idempotency_key=idempotency_key,
                idempotency_scope=ledger.depositor_scope(depositor.pk),
                provider=provider.name,
                depositor_id=depositor.pk,
                now=now,
            )
        except _ROOM_REFUSALS:
            # Another deposit took the room between the page and the lock.
            room = ledger_selectors.deposit_room(inmate=link.inmate, now=now)
            raise OverDepositRoom(
                most_that_can_be_sent_message(room.can_send_fen, link.inmate.facility.currency),
                can_send_fen=room.can_send_fen,
            ) from None
        payment, _created = Payment.objects.get_or_create(
            deposit_id=deposit.pk,
            defaults={
                "provider": provider.name,
                "provider_reference": str(deposit.reference),
                "amount_fen": deposit.amount_fen + deposit.fee_fen,
                "currency": deposit.currency,
                "created_at": now,
            },
        )
        pay_url = provider.create_payment(payment)
    return deposit, pay_url


def record_callback(
    *, provider_name: str, headers, body: bytes, now: dt.datetime | None = None
) -> Payment:
    """A provider's callback: verified (signature, freshness), matched to its payment, checked
    for exactly the amount (amount plus fee) and currency the family was asked for, then
    applied. Raises InvalidCallback for anything it cannot trust; changes nothing then."""
    now = now or timezone.now()
    provider = get_provider(provider_name)
    result = provider.verify_callback(headers=headers, body=body, now=now)
    payment = Payment.objects.filter(
        provider=provider.name, provider_reference=result.provider_reference
    ).first()
    if payment is None:
        raise InvalidCallback("The payment notification names no payment of ours.")
    if result.amount_fen != payment.amount_fen or result.currency != payment.currency:
        logger.warning(
            "refused a %s callback for payment %s: %s %s reported, %s %s expected",
            provider.name,
            payment.pk,
            result.amount_fen,
            result.currency,
            payment.amount_fen,
            payment.currency,
        )
        raise InvalidCallback("The payment notification's amount or currency is wrong.")
    return apply_provider_status(payment_id=payment.pk, status=result.status, now=now)


def apply_provider_status(*, payment_id: int, status: str, now: dt.datetime | None = None):
    """Bring a payment and its deposit in line with what the provider says. Idempotent."""
    now = now or timezone.now()
    if status == "settled":
        return _settle(payment_id=payment_id, now=now)
    if status == "failed":
        return _fail(payment_id=payment_id, now=now)
    return Payment.objects.get(pk=payment_id)


def _settle(*, payment_id: int, now: dt.datetime) -> Payment:
    payment = Payment.objects.get(pk=payment_id)
    provider = get_provider(payment.provider)
    with transaction.atomic():
        deposit = ledger.settle_late_deposit(
            deposit_id=payment.deposit_id, provider_reference=payment.provider_reference, now=now
        )
        if deposit.status == Deposit.Status.CREDITED:
            Payment.objects.filter(pk=payment_id).exclude(status=Payment.Status.SETTLED).update(
                status=Payment.Status.SETTLED, settled_at=now
            )
            if payment.receipt_sent_at is None:
                # Queued, never sent here: a slow or failing mail server must not slow or fail
                # the callback, and the task retries a failed send. A replayed callback queues
                # it again until it is sent (the task sends once), which also recovers a
                # receipt whose queueing failed.
                transaction.on_commit(lambda: _queue_receipt(payment_id))
        elif deposit.status == Deposit.Status.REFUNDED:
            refunding = (
                Payment.objects.filter(pk=payment_id)
                .exclude(status=Payment.Status.REFUNDED)
                .update(
                    status=Payment.Status.REFUNDED,
                    settled_at=Coalesce("settled_at", now),
                    refunded_at=now,
                )
            )
            if refunding:
                # Inside the transaction: if the provider refuses, nothing is recorded and the
                # next callback or poll tries again.
                provider.refund(payment)
    return Payment.objects.get(pk=payment_id)


def _fail(*, payment_id: int, now: dt.datetime) -> Payment:
    payment = Payment.objects.get(pk=payment_id)
    with transaction.atomic():
        deposit = Deposit.objects.get(pk=payment.deposit_id)
        if deposit.status == Deposit.Status.CREATED:
            # Resolved meanwhile (credited by a poll, expired): nothing to release.
            with contextlib.suppress(errors.DepositNotPending):
                ledger.release_deposit(deposit_id=deposit.pk, status=Deposit.Status.FAILED, now=now)
        Payment.objects.filter(pk=payment_id, status=Payment.Status.PENDING).update(
            status=Payment.Status.FAILED
        )
    return Payment.objects.get(pk=payment_id)


def poll_pending_payments(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Ask the provider about payments still pending, so a lost callback loses no money.
    Returns how many were asked about."""
    now = now or timezone.now()
    pending = list(
        Payment.objects.filter(
            status=Payment.Status.PENDING,
            created_at__lte=now - POLL_AFTER,
            created_at__gte=now - POLL_UNTIL,
        )
        .order_by("created_at")
        .values_list("pk", "provider")[:limit]
    )
    for payment_id, provider_name in pending:
        try:
            provider = get_provider(provider_name)
            status = provider.query_status(Payment.objects.get(pk=payment_id))
            apply_provider_status(payment_id=payment_id, status=status, now=now)
        except errors.DomainError:
            logger.exception("polling payment %s failed", payment_id)
    return len(pending)


def send_receipt_once(*, payment_id: int) -> bool:
    """Email the family the receipt of a credited deposit, once per deposit. Returns whether it
    was sent now. Run by ``payments.tasks.send_receipt`` (queued when the deposit is credited);
    moves no money: the only row it writes is the payment's ``receipt_sent_at``.

    The payment row is locked for the send and ``receipt_sent_at`` set in the same transaction,
    so a second delivery of the task waits and then finds the receipt sent, and a failed send
    rolls the mark back for the task's retry. Only a worker dying between the mail server
    accepting the email and the commit can send it twice; marking it before sending instead
    would lose it then, and on every failure."""
    from .receipts import send_receipt_email

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
    from .tasks import send_receipt  # the tasks module imports this one

    now = now or timezone.now()
    with recorded_run(kind=ScheduledRun.Kind.RECEIPTS, trigger=trigger, now=now) as run:
        unsent = list(
            Payment.objects.filter(
                status=Payment.Status.SETTLED,
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
                send_receipt.delay(payment_id=payment_id)
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


def _queue_receipt(payment_id: int) -> None:
    from .tasks import send_receipt  # the tasks module imports this one

    try:
        send_receipt.delay(payment_id=payment_id)
    except Exception:  # the money is credited; a broker outage must not fail the callback
        logger.exception("the receipt email for payment %s was not queued", payment_id)
