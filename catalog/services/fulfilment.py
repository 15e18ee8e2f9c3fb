"""Staff moving an order on in the admin: picked, delivered, or cancelled with its refund."""

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from commissary import errors
from ledger import services as ledger_services
from ledger.locks import lock_inmate_accounts

from ..models import FacilityProduct, Order


def _move_order(*, order_id: int, from_status: str, to_status: str, staff_id, now, field: str):
    """One conditional UPDATE (no model signal sees it), so the audit entry is written here, in
    the same transaction: the staff member, the facility, the status before and after."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = Order.objects.filter(pk=order_id, status=from_status).update(
            status=to_status, handled_by_id=staff_id, **{field: now}
        )
        if not updated:
            raise _cannot_move(order_id=order_id, to_status=to_status)
        audit.record(
            model=Order,
            object_pk=order_id,
            object_repr=f"#{order_id}",
            changes={"status": [from_status, to_status], field: [None, now.isoformat()]},
            facility_id=Order.objects.values_list("facility_id", flat=True).get(pk=order_id),
            actor_id=staff_id,
        )


def _cannot_move(*, order_id: int, to_status: str) -> errors.DomainError:
    """Why an order cannot take this step, in words a clerk acts on."""
    status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    if status is None:
        return errors.OrderNotFound()
    if status == Order.Status.CANCELLED:
        return errors.OrderStateConflict(_("It was cancelled."))
    if to_status == Order.Status.DELIVERED and status == Order.Status.PLACED:
        return errors.OrderStateConflict(_("It must be picked before it is delivered."))
    if to_status == Order.Status.PICKED and status == Order.Status.PICKED:
        return errors.OrderStateConflict(_("It is picked already."))
    if status == Order.Status.DELIVERED:
        return errors.OrderStateConflict(_("It is delivered already."))
    return errors.OrderStateConflict()


def mark_order_picked(*, order_id: int, staff_id: int, now: dt.datetime | None = None) -> None:
    _move_order(
        order_id=order_id,
        from_status=Order.Status.PLACED,
        to_status=Order.Status.PICKED,
        staff_id=staff_id,
        now=now,
        field="picked_at",
    )


def mark_order_delivered(*, order_id: int, staff_id: int, now: dt.datetime | None = None) -> None:
    _move_order(
        order_id=order_id,
        from_status=Order.Status.PICKED,
        to_status=Order.Status.DELIVERED,
        staff_id=staff_id,
        now=now,
        field="delivered_at",
    )


def cancel_order(
    *, order_id: int, staff_id: int, reason: str, now: dt.datetime | None = None
) -> Order:
    """Cancel an order not yet delivered: its units go back on the shelf, its money back to the
    inmate through the ledger's purchase refund (into held money where spendable money would
    break the balance cap), and its spending room comes back (cancelled orders do not count).
    Cancelling twice is refused; the refund's key is derived from the order, so it moves
    money once."""
    if not isinstance(reason, str) or not reason.strip():
        raise errors.ValidationFailed(_("A reason is required."))
    now = now or timezone.now()
    inmate_id = Order.objects.filter(pk=order_id).values_list("inmate_id", flat=True).first()
    if inmate_id is None:
        raise errors.OrderNotFound()
    with transaction.atomic():
        with connection.cursor() as cursor:
            lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == Order.Status.DELIVERED:
            raise errors.OrderStateConflict(_("A delivered order cannot be cancelled."))
        if order.status == Order.Status.CANCELLED:
            raise errors.OrderStateConflict(_("It was cancelled already."))
        from_status = order.status
        quantities = dict(order.items.values_list("product_id", "quantity"))
        offers = list(
            FacilityProduct.objects.select_for_update()
            .filter(facility_id=order.facility_id, product_id__in=quantities)
            .order_by("id")
        )
        for offer in offers:
            FacilityProduct.objects.filter(pk=offer.pk).update(
                stock=offer.stock + quantities[offer.product_id]
            )
        refund = ledger_services.refund_purchase(
            purchase_id=order.purchase_id,
            amount_fen=order.total_fen,
            idempotency_key=f"order-cancel:{order.pk}",
            idempotency_scope=ledger_services.SYSTEM_SCOPE,
            reason=reason.strip(),
            staff_id=staff_id,
            now=now,
        )
        order.status = Order.Status.CANCELLED
        order.cancelled_at = now
        order.cancel_reason = reason.strip()[:200]
        order.refund = refund
        order.handled_by_id = staff_id
        order.save(
            update_fields=["status", "cancelled_at", "cancel_reason", "refund", "handled_by"]
        )
        audit.record(
            model=Order,
            object_pk=order.pk,
            object_repr=f"#{order.pk}",
            changes={
                "status": [from_status, Order.Status.CANCELLED],
                "cancel_reason": ["", order.cancel_reason],
                "refunded_fen": [0, order.total_fen],
            },
            facility_id=order.facility_id,
            actor_id=staff_id,
        )
    return order
