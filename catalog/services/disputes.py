"""Disputes: an inmate files one from a kiosk about a delivered order line; staff decide it
(refund all or part of what is left of the line through the ledger, replace, or reject with a
reason the inmate sees); one past its deadline is escalated.

Filing is idempotent per kiosk and key like an order (the same key and body return the first
answer; anything else under the key is refused). A line has at most one open dispute (a
partial unique index backs the check). Deciding takes the inmate's accounts, then the order,
then the dispute row, and re-reads the dispute under its lock: of two staff deciding at once,
one decides and the other is refused with DisputeNotOpen, so a line is refunded once.
"""

import datetime as dt

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commissary import errors
from facilities.models import Facility, local_date
from ledger import services as ledger_services
from ledger.locks import lock_inmate_accounts

from .. import selectors
from ..models import Dispute, LineRefund, Order, OrderItem
from .checks import checked_key
from .prices import local_midnight
from .refunds import refund_line

MAX_TEXT = 500


def _checked_body(reason, text) -> tuple[str, str]:
    if reason not in Dispute.Reason.values:
        raise errors.ValidationFailed(
            _("reason is one of: %(reasons)s.") % {"reasons": ", ".join(Dispute.Reason.values)}
        )
    if text is None:
        text = ""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise errors.ValidationFailed(
            _("text is at most %(count)d characters.") % {"count": MAX_TEXT}
        )
    text = text.strip()
    if reason == Dispute.Reason.OTHER and not text:
        raise errors.ValidationFailed(_("Say what is wrong in text."))
    return reason, text


def window_closes_at(*, delivered_at: dt.datetime, facility: Facility) -> dt.datetime:
    """The end of the facility-local day ``dispute_window_days`` after the delivery's."""
    last_day = local_date(delivered_at, facility.timezone) + dt.timedelta(
        days=facility.dispute_window_days
    )
    return local_midnight(last_day + dt.timedelta(days=1), facility.timezone)


def answer_deadline(*, filed_at: dt.datetime, facility: Facility) -> dt.datetime:
    """The end of the facility-local day ``dispute_answer_days`` after the filing's."""
    last_day = local_date(filed_at, facility.timezone) + dt.timedelta(
        days=facility.dispute_answer_days
    )
    return local_midnight(last_day + dt.timedelta(days=1), facility.timezone)


def _answer_by_key(scope: str, idempotency_key: str, request_hash: str) -> Dispute | None:
    earlier = Dispute.objects.filter(
        idempotency_scope=scope, idempotency_key=idempotency_key
    ).first()
    if earlier is not None and earlier.request_hash != request_hash:
        raise errors.IdempotencyConflict()
    return earlier


def file_dispute(
    *,
    inmate_id: int,
    device_id: int,
    order_id: int,
    line_id,
    reason,
    text="",
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Dispute:
    """File a dispute about a delivered line of the inmate's own order, within the facility's
    window after delivery. The first answer is kept in ``filed_response``: a replay of the
    key with the same inmate and body gets it back; the same key with anything else is
    refused with IdempotencyConflict."""
    idempotency_key = checked_key(idempotency_key)
    if isinstance(line_id, bool) or not isinstance(line_id, int) or not 1 <= line_id < 2**63:
        raise errors.ValidationFailed(_("line is the id of a line of the order."))
    reason, text = _checked_body(reason, text)
    scope = ledger_services.kiosk_scope(device_id)
    request_hash = ledger_services.request_hash_of(
        "file_dispute",
        inmate_id=inmate_id,
        order_id=order_id,
        line_id=line_id,
        reason=reason,
        text=text,
    )
    now = now or timezone.now()
    earlier = _answer_by_key(scope, idempotency_key, request_hash)
    if earlier is not None:
        return earlier
    try:
        with transaction.atomic():
            order = (
                Order.objects.select_for_update()
                .filter(pk=order_id, inmate_id=inmate_id)
                .select_related("facility")
                .first()
            )
            if order is None:
                raise errors.OrderNotFound()
            line = OrderItem.objects.filter(pk=line_id, order_id=order.pk).first()
            if line is None:
                raise errors.OrderLineNotFound()
            if order.status != Order.Status.DELIVERED:
                raise errors.OrderNotDelivered()
            facility = order.facility
            if now >= window_closes_at(delivered_at=order.delivered_at, facility=facility):
                raise errors.DisputeWindowClosed()
            if Dispute.objects.filter(line=line, status=Dispute.Status.OPEN).exists():
                raise errors.DisputeExists()
            dispute = Dispute(
                facility_id=order.facility_id,
                inmate_id=inmate_id,
                order=order,
                line=line,
                device_id=device_id,
                reason=reason,
                text=text,
                deadline=answer_deadline(filed_at=now, facility=facility),
                created_at=now,
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            )
            dispute.save()
            dispute.filed_response = selectors.dispute_payload(
                dispute, timezone_name=facility.timezone
            )
            dispute.save(update_fields=["filed_response"])
            return dispute
    except IntegrityError:
        # The same key at the same moment (its first request committed first), or another
        # open dispute of the line filed at the same moment.
        earlier = _answer_by_key(scope, idempotency_key, request_hash)
        if earlier is not None:
            return earlier
        raise errors.DisputeExists() from None


DECISIONS = ("refund", "replace", "reject")


def decide_dispute(
    *,
    dispute_id: int,
    decision: str,
    answer: str,
    staff_id: int,
    refund_fen: int | None = None,
    now: dt.datetime | None = None,
) -> Dispute:
    """Decide an open dispute. ``refund``: give back ``refund_fen`` (default: all that is left
    of the line) through the ledger, never more than what is left of what was paid for the
    line; ``replace``: the item is replaced, no money moves; ``reject``: with ``answer``, the
    reason the inmate sees. Every decision carries an answer to the inmate. Refused with
    DisputeNotOpen once decided (so repeated clicks and concurrent staff refund once)."""
    if decision not in DECISIONS:
        raise errors.ValidationFailed(_("Choose refund, replace or reject."))
    if not isinstance(answer, str) or not answer.strip():
        raise errors.ValidationFailed(_("Write the answer the inmate will see."))
    answer = answer.strip()[:500]
    now = now or timezone.now()
    inmate_id = Dispute.objects.filter(pk=dispute_id).values_list("inmate_id", flat=True).first()
    if inmate_id is None:
        raise errors.ValidationFailed(_("No such dispute."))
    with transaction.atomic():
        with connection.cursor() as cursor:
            lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        dispute = (
            Dispute.objects.select_for_update().select_related("order", "line").get(pk=dispute_id)
        )
        if dispute.status != Dispute.Status.OPEN:
            raise errors.DisputeNotOpen()
        if decision == "refund":
            line = dispute.line
            left_fen = line.line_total_fen - line.refunded_fen
            amount_fen = left_fen if refund_fen is None else refund_fen
            if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 1:
                raise errors.InvalidAmount()
            if amount_fen > left_fen:
                raise errors.RefundAboveLine()
            line_refund = refund_line(
                order=dispute.order,
                line=line,
                amount_fen=amount_fen,
                quantity=None,
                reason=LineRefund.Reason.DISPUTE,
                idempotency_key=f"dispute-refund:{dispute.pk}",
                staff_id=staff_id,
                now=now,
                dispute=dispute,
            )
            dispute.status = Dispute.Status.REFUNDED
            dispute.refund_fen = amount_fen
            dispute.refund_id = line_refund.refund_id
        elif decision == "replace":
            dispute.status = Dispute.Status.REPLACED
        else:
            dispute.status = Dispute.Status.REJECTED
        dispute.answer = answer
        dispute.decided_at = now
        dispute.decided_by_id = staff_id
        # .save(): the decision goes to the audit trail (django-auditlog) with who made it.
        dispute.save()
    return dispute


def escalate_overdue_disputes(*, now: dt.datetime | None = None) -> list[int]:
    """Mark every open dispute past its deadline as escalated (once); returns their ids. The
    task that calls it emails each facility's administrators."""
    now = now or timezone.now()
    with transaction.atomic():
        overdue = list(
            Dispute.objects.select_for_update(skip_locked=True)
            .filter(status=Dispute.Status.OPEN, deadline__lte=now, escalated_at__isnull=True)
            .values_list("id", flat=True)
        )
        for dispute in Dispute.objects.filter(pk__in=overdue):
            dispute.escalated_at = now
            dispute.save(update_fields=["escalated_at"])
    return overdue
