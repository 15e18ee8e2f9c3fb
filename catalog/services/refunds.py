"""Orders are charged for what was delivered: a line (or part of one) that cannot be filled at
picking is refunded through the ledger when the order is marked picked, and a dispute decided
for the inmate refunds (part of) its line. Each refund is a ``LineRefund`` with its own ledger
refund transaction, and moves the line's ``refunded_fen`` in the same database transaction:
a conditional UPDATE that never takes it above what the line cost (and a CHECK behind it).

Lock order (``ledger.locks``): the inmate's accounts, then the order row, then the dispute row.
"""

import datetime as dt

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from accounts import audit
from commissary import errors
from ledger import memos
from ledger import services as ledger_services
from ledger.locks import lock_inmate_accounts

from ..models import LineRefund, Order, OrderItem
from .fulfilment import _cannot_move

SHORT_REASONS = {
    LineRefund.Reason.OUT_OF_STOCK,
    LineRefund.Reason.DAMAGED,
    LineRefund.Reason.RESTRICTED,
}


def refund_line(
    *,
    order: Order,
    line: OrderItem,
    amount_fen: int,
    quantity: int | None,
    reason: str,
    idempotency_key: str,
    staff_id: int | None,
    now: dt.datetime,
    dispute=None,
) -> LineRefund:
    """Inside a transaction that holds the inmate's accounts and the order: give back
    ``amount_fen`` of ``line`` through the ledger. Refused with RefundAboveLine when that
    would take the line's refunds above what it cost."""
    if amount_fen < 1:
        raise errors.InvalidAmount()
    moved = OrderItem.objects.filter(
        pk=line.pk, refunded_fen__lte=line.line_total_fen - amount_fen
    ).update(refunded_fen=F("refunded_fen") + amount_fen)
    if not moved:
        raise errors.RefundAboveLine()
    with override("en"):  # the journal keeps one language; it is shown in the reader's
        why = str(LineRefund.Reason(reason).label)
    memo = memos.line_refund_memo(
        order_id=order.pk, quantity=line.quantity, product=line.name_en, reason=why
    )
    refund = ledger_services.refund_purchase(
        purchase_id=order.purchase_id,
        amount_fen=amount_fen,
        idempotency_key=idempotency_key,
        idempotency_scope=ledger_services.SYSTEM_SCOPE,
        reason=memo,
        staff_id=staff_id,
        now=now,
    )
    return LineRefund.objects.create(
        facility_id=order.facility_id,
        order=order,
        line=line,
        quantity=quantity,
        amount_fen=amount_fen,
        reason=reason,
        dispute=dispute,
        refund=refund,
        created_by_id=staff_id,
        created_at=now,
    )


def mark_order_picked(
    *,
    order_id: int,
    staff_id: int,
    short: dict[int, tuple[int, str]] | None = None,
    now: dt.datetime | None = None,
) -> list[LineRefund]:
    """Mark a placed order picked. ``short`` maps an order line's id to (units that could not
    be filled, why: out_of_stock, damaged or restricted): each is refunded at once through the
    ledger (its units × the line's unit price), partial lines included. The order is picked
    once (a second call is refused with OrderStateConflict), so each shortfall is refunded
    exactly once; substitutions are never made here."""
    short = short or {}
    now = now or timezone.now()
    inmate_id = Order.objects.filter(pk=order_id).values_list("inmate_id", flat=True).first()
    if inmate_id is None:
        raise errors.OrderNotFound()
    with transaction.atomic():
        with connection.cursor() as cursor:
            lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status != Order.Status.PLACED:
            raise _cannot_move(order_id=order_id, to_status=Order.Status.PICKED)
        lines = {line.pk: line for line in order.items.all()}
        refunds = []
        for line_id, (quantity, reason) in sorted(short.items()):
            line = lines.get(line_id)
            if line is None:
                raise errors.OrderLineNotFound()
            if reason not in SHORT_REASONS:
                raise errors.ValidationFailed(_("Say why the line could not be filled."))
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise errors.ValidationFailed(_("Units short is a whole number."))
            if quantity == 0:
                continue
            if not 1 <= quantity <= line.quantity:
                raise errors.ValidationFailed(
                    _("At most %(count)d units of this line can be short.")
                    % {"count": line.quantity}
                )
            refunds.append(
                refund_line(
                    order=order,
                    line=line,
                    amount_fen=line.unit_price_fen * quantity,
                    quantity=quantity,
                    reason=reason,
                    idempotency_key=f"order-short:{line.pk}",
                    staff_id=staff_id,
                    now=now,
                )
            )
        order.status = Order.Status.PICKED
        order.picked_at = now
        order.handled_by_id = staff_id
        order.save(update_fields=["status", "picked_at", "handled_by"])
        audit.record(
            model=Order,
            object_pk=order.pk,
            object_repr=f"#{order.pk}",
            changes={
                "status": [Order.Status.PLACED, Order.Status.PICKED],
                "picked_at": [None, now.isoformat()],
                **(
                    {"refunded_fen": [0, sum(refund.amount_fen for refund in refunds)]}
                    if refunds
                    else {}
                ),
            },
            facility_id=order.facility_id,
            actor_id=staff_id,
        )
    return refunds
