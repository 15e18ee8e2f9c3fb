"""Family deposits at a provider: starting one, and turning what the provider says (a signed
callback or a status poll) into ledger calls.

Money moves only in the ledger (``ledger.services``): a settled payment credits its deposit,
or, when it settled after the deposit was released and no longer fits, is refunded through the
provider (DESIGN "Deposits and payments"). Every step is idempotent, so a callback replayed, a
callback racing a poll, or a poll repeated moves money once. Each function runs the ledger call
first inside its own ``transaction.atomic()``, so the inmate's accounts are locked before the
payment row is written. No provider is called while they are locked: a refund is written to
the provider outbox (``outbox.request_refund``) in the deciding transaction and made by a
worker after the commit; the family's receipt email is likewise queued once the credit has
committed, never sent inside the callback.
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
from ledger.models import Deposit

from .. import payers, screening
from ..models import Payment
from ..providers import get_provider
from ..providers.base import InvalidCallback
from . import outbox
from .receipts import queue_receipt

logger = logging.getLogger(__name__)

# How long a payment may stay pending before the poll asks the provider about it, and until
# when after its deposit's expiry it keeps asking (a payment may settle late).
POLL_AFTER = dt.timedelta(minutes=2)
POLL_UNTIL = dt.timedelta(days=2)
LATE_REFUND_REASON = "Deposit no longer fits under the caps"


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
    return apply_provider_status(
        payment_id=payment.pk, status=result.status, payer=result.payer, now=now
    )


@outbox.applies_provider_status
def apply_provider_status(
    *,
    payment_id: int,
    status: str,
    payer: payers.Payer | None = None,
    now: dt.datetime | None = None,
):
    """Bring a payment and its deposit in line with what the provider says, and keep who paid
    (``payer``, as a keyed hash) when the provider names them. Idempotent."""
    now = now or timezone.now()
    if status == "settled":
        return _settle(payment_id=payment_id, payer=payer, now=now)
    if status in ("failed", "cancelled"):
        return _fail(payment_id=payment_id, now=now, cancelled=status == "cancelled")
    return Payment.objects.get(pk=payment_id)


def _settle(*, payment_id: int, payer: payers.Payer | None, now: dt.datetime) -> Payment:
    payment = Payment.objects.select_related("deposit__facility").get(pk=payment_id)
    payer_fingerprint = payment.payer_fingerprint
    if payer is not None and not payer_fingerprint:
        payer_fingerprint = payers.fingerprint(payment.provider, payer.provider_id)
    # Monitoring's rules (payments.screening) are asked only while the deposit is still to be
    # decided: a replayed callback of a held or credited deposit changes nothing.
    fired = []
    if payment.deposit.status in UNDECIDED_STATUSES:
        fired = screening.fired_rules(
            deposit=payment.deposit, payer_fingerprint=payer_fingerprint, now=now
        )
    with transaction.atomic():
        deposit = ledger.settle_late_deposit(
            deposit_id=payment.deposit_id,
            provider_reference=payment.provider_reference,
            now=now,
            hold=bool(fired),
        )
        if payer_fingerprint and not payment.payer_fingerprint:
            # The first payer a provider names stays: a payment has one.
            Payment.objects.filter(pk=payment_id, payer_fingerprint="").update(
                payer_fingerprint=payer_fingerprint,
                payer_label=payer.label[:64],
                payer_name=payer.name[:128],
            )
        elif payer is not None and payer.name and not payment.payer_name:
            # A later answer (Alipay's query) that names the same payer may bring their name.
            Payment.objects.filter(
                pk=payment_id,
                payer_fingerprint=payers.fingerprint(payment.provider, payer.provider_id),
                payer_name="",
            ).update(payer_name=payer.name[:128])
        if deposit.status == Deposit.Status.HELD:
            held = (
                Payment.objects.filter(pk=payment_id)
                .exclude(status=Payment.Status.SETTLED)
                .update(status=Payment.Status.SETTLED, settled_at=now)
            )
            if held and fired:
                screening.record_hold(deposit=deposit, fired=fired, now=now)
        elif deposit.status == Deposit.Status.CREDITED:
            Payment.objects.filter(pk=payment_id).exclude(status=Payment.Status.SETTLED).update(
                status=Payment.Status.SETTLED, settled_at=now
            )
            if payment.receipt_sent_at is None:
                # Queued, never sent here: a slow or failing mail server must not slow or fail
                # the callback, and the task retries a failed send. A replayed callback queues
                # it again until it is sent (the task sends once), which also recovers a
                # receipt whose queueing failed.
                transaction.on_commit(lambda: queue_receipt(payment_id))
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
                # Recorded here, made after the commit by a worker: the inmate's accounts are
                # locked in this transaction, and the provider's HTTP call must not hold them.
                outbox.request_refund(payment_id=payment_id, reason=LATE_REFUND_REASON, now=now)
    return Payment.objects.get(pk=payment_id)


UNDECIDED_STATUSES = (Deposit.Status.CREATED, Deposit.Status.EXPIRED, Deposit.Status.FAILED)


def credit_held_payment(*, deposit_id: int, now: dt.datetime | None = None) -> Deposit:
    """Credit a deposit that was held for review (accepted), once, and queue its receipt.
    Idempotent: a deposit already credited is returned unchanged."""
    now = now or timezone.now()
    with transaction.atomic():
        deposit = ledger.credit_deposit(deposit_id=deposit_id, now=now, from_held=True)
        payment_id = Payment.objects.filter(deposit_id=deposit_id).values_list("pk", flat=True)
        payment_id = payment_id.first()
        if payment_id is not None:
            transaction.on_commit(lambda: queue_receipt(payment_id))
    return deposit


def refund_held_payment(*, deposit_id: int, reason: str, now: dt.datetime | None = None):
    """Refund a deposit that was held for review (rejected or undecided in time): its room
    under the caps is given back and the whole payment (amount plus fee) is returned through
    the provider outbox after the commit, never by an HTTP call under the inmate's lock.
    Idempotent: a deposit already refunded is returned unchanged, refunded once."""
    now = now or timezone.now()
    with transaction.atomic():
        deposit = ledger.refund_held_deposit(deposit_id=deposit_id, now=now)
        payment = Payment.objects.filter(deposit_id=deposit_id).first()
        if payment is not None:
            refunding = (
                Payment.objects.filter(pk=payment.pk)
                .exclude(status=Payment.Status.REFUNDED)
                .update(
                    status=Payment.Status.REFUNDED,
                    settled_at=Coalesce("settled_at", now),
                    refunded_at=now,
                )
            )
            if refunding:
                outbox.request_refund(payment_id=payment.pk, reason=reason, now=now)
    return deposit


def _fail(*, payment_id: int, now: dt.datetime, cancelled: bool = False) -> Payment:
    """The payment did not happen: the deposit's reservation is released (``failed``, whether
    it failed or the family cancelled it, so the caps and the ledger see one state) and the
    payment records which of the two it was, for the words the family reads."""
    payment = Payment.objects.get(pk=payment_id)
    with transaction.atomic():
        deposit = Deposit.objects.get(pk=payment.deposit_id)
        if deposit.status == Deposit.Status.CREATED:
            # Resolved meanwhile (credited by a poll, expired): nothing to release.
            with contextlib.suppress(errors.DepositNotPending):
                ledger.release_deposit(deposit_id=deposit.pk, status=Deposit.Status.FAILED, now=now)
        Payment.objects.filter(pk=payment_id, status=Payment.Status.PENDING).update(
            status=Payment.Status.CANCELLED if cancelled else Payment.Status.FAILED
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
            answer = provider.query_status(Payment.objects.get(pk=payment_id))
            apply_provider_status(
                payment_id=payment_id, status=answer.status, payer=answer.payer, now=now
            )
        except errors.DomainError:
            logger.exception("polling payment %s failed", payment_id)
    return len(pending)
