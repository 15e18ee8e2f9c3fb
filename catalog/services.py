"""Every write to the commissary: orders placed from a kiosk, picked, delivered or cancelled.

Guards invariant 7 (a kiosk can only debit an inmate, for goods at the server's prices) and
keeps stock, spending limits and money moving together: ``place_order`` is one database
transaction that either commits the order, its stock, and its ledger debit, or changes nothing.

Lock order (the same everywhere, see ``ledger.locks``): the inmate's spendable and held account
rows first, then the order row (cancelling), then stock rows in primary-key order. Every order
of an inmate is written under its account lock, so the spending-limit sum read under that lock
cannot race another order of the same inmate; two inmates buying the last units meet on the
stock rows, always locked in one order, so they queue instead of deadlocking.
"""

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commissary import errors
from facilities.models import spending_period_start
from facilities.selectors import SPENDING_LIMIT_SQL, festival_month_key
from ledger import services as ledger_services
from ledger.locks import lock_inmate_accounts
from ledger.services.posting import execute

from . import selectors
from .models import FacilityProduct, Order, OrderItem, Product, Restriction, localized

MAX_LINES_PER_ORDER = 50
MAX_KEY_LENGTH = ledger_services.MAX_CLIENT_KEY_LENGTH
# The ledger's rule for a client's key: printable ASCII, not starting with a space.
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e][\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    quantity: int


def _is_whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def checked_lines(items) -> list[OrderLine]:
    """The order's lines as the kiosk sent them: whole positive quantities, each product once.
    The per-product maximum is checked against the product under the lock."""
    if not isinstance(items, list | tuple) or not items:
        raise errors.ValidationFailed(_("An order needs at least one item."))
    if len(items) > MAX_LINES_PER_ORDER:
        raise errors.ValidationFailed(
            _("An order holds at most %(count)d different products.")
            % {"count": MAX_LINES_PER_ORDER}
        )
    lines: list[OrderLine] = []
    seen: set[int] = set()
    for item in items:
        if isinstance(item, OrderLine):
            product_id, quantity = item.product_id, item.quantity
        elif isinstance(item, dict) and set(item) == {"product_id", "quantity"}:
            product_id, quantity = item["product_id"], item["quantity"]
        else:
            raise errors.ValidationFailed(_("Each item is a product_id and a quantity."))
        if not _is_whole_number(product_id) or not 1 <= product_id < 2**63:
            raise errors.ValidationFailed(_("A product_id is a positive whole number."))
        if not _is_whole_number(quantity) or quantity < 1:
            raise errors.ValidationFailed(_("A quantity is a whole number of at least 1."))
        if product_id in seen:
            raise errors.ValidationFailed(
                _("Each product may appear only once in an order; raise its quantity instead.")
            )
        seen.add(product_id)
        lines.append(OrderLine(product_id, quantity))
    return lines


def checked_key(idempotency_key) -> str:
    if (
        not isinstance(idempotency_key, str)
        or not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH
        or not _PRINTABLE_ASCII.fullmatch(idempotency_key)
    ):
        raise errors.ValidationFailed(
            _("The Idempotency-Key header is 1 to %(limit)d printable ASCII characters.")
            % {"limit": MAX_KEY_LENGTH}
        )
    return idempotency_key


def _order_by_key(scope: str, idempotency_key: str, request_hash: str) -> Order | None:
    """The first order placed under this key, or None; a different request under the same
    key is refused."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, request_hash FROM catalog_order "
            "WHERE idempotency_scope = %s AND idempotency_key = %s",
            [scope, idempotency_key],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    if row[1] != request_hash:
        raise errors.IdempotencyConflict()
    return Order.objects.get(pk=row[0])


def place_order(
    *,
    inmate_id: int,
    device_id: int,
    items: Sequence,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Order:
    """Place an order from a kiosk: server prices only, stock checked and taken, the grade's
    spending limit checked for its week or month, the total debited from spendable money.

    Idempotent per kiosk: the same key with the same inmate and items returns the first order
    (its stored answer in ``placed_response``); the same key with anything else raises
    IdempotencyConflict. Any refusal raises one DomainError and changes nothing.
    """
    lines = checked_lines(items)
    idempotency_key = checked_key(idempotency_key)
    scope = ledger_services.kiosk_scope(device_id)
    request_hash = ledger_services.request_hash_of(
        "place_order",
        inmate_id=inmate_id,
        items=[[line.product_id, line.quantity] for line in lines],
    )
    now = now or timezone.now()

    try:
        with transaction.atomic():
            return _place(
                inmate_id=inmate_id,
                device_id=device_id,
                lines=lines,
                scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                now=now,
            )
    except (errors.DomainError, IntegrityError):
        # A replay fails (on the order's unique key, or earlier: the stock or money it would
        # need again may be gone by now) and then finds the first order and its answer. The
        # same key racing its first request waits on the unique index, fails, and finds the
        # committed first order the same way. Only when there is none is the failure real.
        earlier = _order_by_key(scope, idempotency_key, request_hash)
        if earlier is None:
            raise
        return earlier


# Whether the kiosk (parameter 1) is an active kiosk of the inmate's facility, the grade's
# limit at the order's instant (parameter 2: its festival month key, see facilities.selectors)
# and period, and whether a restriction is in force at the order's instant (parameter 3).
_INMATE_COLUMNS = (
    "EXISTS (SELECT 1 FROM facilities_kioskdevice d "  # noqa: S608 - constant SQL; values bound
    "WHERE d.id = %s AND d.facility_id = i.facility_id AND d.is_active), "
    f"{SPENDING_LIMIT_SQL}, g.spending_period, "
    "EXISTS (SELECT 1 FROM catalog_restriction r WHERE r.inmate_id = i.id "
    "AND (r.ends_at IS NULL OR r.ends_at > %s))"
)


@dataclass(frozen=True, slots=True)
class _Offer:
    """A stock row as read under its lock, with the product's price and names."""

    id: int
    product_id: int
    stock: int
    price_fen: int
    max_per_order: int
    name_zh: str
    name_en: str


def _place(
    *,
    inmate_id: int,
    device_id: int,
    lines: list[OrderLine],
    scope: str,
    idempotency_key: str,
    request_hash: str,
    now: dt.datetime,
) -> Order:
    # The hot path of a kiosk order: a handful of statements through one cursor (an ORM call
    # costs several times its round trip), each decision taken on what was read under the
    # locks. Tested like any other service: tests/catalog, tests/kiosk.
    with connection.cursor() as cursor:
        # 1. The inmate's accounts, first, as every money operation takes them.
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        if locked.is_closed:
            raise errors.InmateReleased()
        if locked.is_frozen:
            raise errors.AccountFrozen()
        # 2. The stock rows, in primary-key order, read with the kiosk, the inmate's grade and
        # whether any restriction applies (one statement; the decisions keep their order).
        wanted = {line.product_id: line.quantity for line in lines}
        festival_month = festival_month_key(now, locked.timezone)
        lock_clause = "FOR UPDATE OF fp" if connection.features.has_select_for_update_of else ""
        execute(
            cursor,
            f"SELECT {_INMATE_COLUMNS}, fp.id, fp.product_id, fp.stock, p.price_fen, "  # noqa: S608 - table and column names, placeholder lists and a constant lock clause; values are bound
            "p.max_per_order, p.name_zh, p.name_en "
            "FROM facilities_inmate i LEFT JOIN facilities_grade g ON g.id = i.grade_id "
            "JOIN catalog_facilityproduct fp ON fp.facility_id = %s "
            f"AND fp.product_id IN ({', '.join(['%s'] * len(wanted))}) AND fp.is_available "
            "JOIN catalog_product p ON p.id = fp.product_id AND p.is_active "
            f"WHERE i.id = %s ORDER BY fp.id {lock_clause}",
            [device_id, festival_month, now, locked.facility_id, *wanted, inmate_id],
        )
        rows = cursor.fetchall()
        if rows:
            is_device_here, limit_fen, period, is_restricted = rows[0][:4]
        else:  # no such product here: the kiosk and restrictions still answer first
            execute(
                cursor,
                f"SELECT {_INMATE_COLUMNS} FROM facilities_inmate i "  # noqa: S608
                "LEFT JOIN facilities_grade g ON g.id = i.grade_id WHERE i.id = %s",
                [device_id, festival_month, now, inmate_id],
            )
            is_device_here, limit_fen, period, is_restricted = cursor.fetchone()
        if not is_device_here:
            raise errors.InmateNotFound()
        if is_restricted:
            _refuse_restricted(inmate_id=inmate_id, lines=lines, now=now)
        offers = [_Offer(*row[4:]) for row in rows]
        if len(offers) != len(wanted):
            raise errors.ProductNotFound()
        for offer in offers:
            quantity = wanted[offer.product_id]
            name = localized(offer.name_zh, offer.name_en)
            if quantity > offer.max_per_order:
                raise errors.ValidationFailed(
                    _("At most %(count)d of %(name)s may be in one order.")
                    % {"count": offer.max_per_order, "name": name}
                )
            if quantity > offer.stock:
                raise errors.OutOfStock(
                    _("Only %(count)d of %(name)s are left.") % {"count": offer.stock, "name": name}
                )
        total_fen = sum(offer.price_fen * wanted[offer.product_id] for offer in offers)

        # 3. The spending limit: every order of this inmate is written under its account
        # lock, so the sum read here cannot race another order of the same inmate.
        if limit_fen is not None:
            start = spending_period_start(now, locked.timezone, period)
            execute(
                cursor,
                "SELECT COALESCE(SUM(total_fen), 0) FROM catalog_order "
                "WHERE inmate_id = %s AND created_at >= %s AND status <> 'cancelled'",
                [inmate_id, start],
            )
            if int(cursor.fetchone()[0]) + total_fen > limit_fen:
                raise errors.SpendingLimitExceeded()
        if locked.spendable_fen < total_fen:
            raise errors.InsufficientFunds()

        # 4. The writes: stock (the CHECK stock >= 0 backs the test above), the order and its
        # lines, the ledger's debit, and the order's first answer.
        cursor.execute(
            "UPDATE catalog_facilityproduct SET stock = stock - CASE id "  # noqa: S608 - placeholder lists and a constant lock clause; values are bound
            + " ".join("WHEN %s THEN %s" for _ in offers)
            + " END WHERE id IN ("
            + ", ".join("%s" for _ in offers)
            + ")",
            [v for offer in offers for v in (offer.id, wanted[offer.product_id])]
            + [offer.id for offer in offers],
        )
        execute(
            cursor,
            "INSERT INTO catalog_order (facility_id, inmate_id, device_id, status, total_fen, "
            "currency, idempotency_scope, idempotency_key, request_hash, placed_response, "
            "created_at, cancel_reason) "
            "VALUES (%s, %s, %s, 'placed', %s, %s, %s, %s, %s, '{}', %s, '') RETURNING id",
            [
                locked.facility_id,
                inmate_id,
                device_id,
                total_fen,
                locked.currency,
                scope,
                idempotency_key,
                request_hash,
                now,
            ],
        )
        order_id = cursor.fetchone()[0]
        offer_of = {offer.product_id: offer for offer in offers}
        order_items = [
            OrderItem(
                order_id=order_id,
                product_id=line.product_id,
                name_zh=offer_of[line.product_id].name_zh,
                name_en=offer_of[line.product_id].name_en,
                quantity=line.quantity,
                unit_price_fen=offer_of[line.product_id].price_fen,
                line_total_fen=offer_of[line.product_id].price_fen * line.quantity,
            )
            for line in lines
        ]
        cursor.execute(
            "INSERT INTO catalog_orderitem (order_id, product_id, name_zh, name_en, quantity, "  # noqa: S608 - placeholder lists and a constant lock clause; values are bound
            "unit_price_fen, line_total_fen) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(order_items)),
            [
                value
                for item in order_items
                for value in (
                    item.order_id,
                    item.product_id,
                    item.name_zh,
                    item.name_en,
                    item.quantity,
                    item.unit_price_fen,
                    item.line_total_fen,
                )
            ],
        )
        # The debit, under the lock taken in step 1 (the ledger's own entry point would take
        # it again and read its transaction back).
        memo = f"Commissary order #{order_id}"
        purchase = ledger_services.post_purchase(
            cursor,
            locked=locked,
            amount_fen=total_fen,
            idempotency_scope=scope,
            idempotency_key=idempotency_key,
            request_hash=ledger_services.request_hash_of(
                "debit_purchase", inmate_id=inmate_id, amount_fen=total_fen, memo=memo
            ),
            memo=memo,
            now=now,
        )
    order = Order(
        pk=order_id,
        facility_id=locked.facility_id,
        inmate_id=inmate_id,
        device_id=device_id,
        status=Order.Status.PLACED,
        total_fen=total_fen,
        currency=locked.currency,
        idempotency_scope=scope,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        purchase_id=purchase.pk,
        created_at=now,
    )
    order.placed_response = selectors.order_payload(
        order,
        items=order_items,
        balance_after_fen=locked.spendable_fen - total_fen,
        timezone_name=locked.timezone,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_order SET purchase_id = %s, placed_response = %s WHERE id = %s",
            [purchase.pk, json.dumps(order.placed_response), order_id],
        )
    return order


def _refuse_restricted(*, inmate_id: int, lines: list[OrderLine], now: dt.datetime) -> None:
    restrictions = selectors.active_restrictions(inmate_id=inmate_id, now=now)
    for restriction in restrictions:
        if restriction.kind == Restriction.Kind.SUSPENSION:
            raise errors.ProductRestricted(
                _("The inmate's commissary is suspended until %(until)s.")
                % {"until": timezone.localtime(restriction.ends_at).strftime("%Y-%m-%d %H:%M")}
            )
    barred_products = {r.product_id for r in restrictions if r.product_id}
    barred_categories = {r.category_id for r in restrictions if r.category_id}
    if not barred_products and not barred_categories:
        return
    product_ids = [line.product_id for line in lines]
    if (
        barred_products.intersection(product_ids)
        or Product.objects.filter(pk__in=product_ids, category_id__in=barred_categories).exists()
    ):
        raise errors.ProductRestricted()


# --- grades ----------------------------------------------------------------------------


# --- fulfilment (staff, in the admin) --------------------------------------------------


def _move_order(*, order_id: int, from_statuses, to_status: str, staff_id, now, field: str):
    updated = Order.objects.filter(pk=order_id, status__in=from_statuses).update(
        status=to_status, handled_by_id=staff_id, **{field: now or timezone.now()}
    )
    if not updated:
        raise errors.OrderStateConflict()


def mark_order_picked(*, order_id: int, staff_id: int, now: dt.datetime | None = None) -> None:
    _move_order(
        order_id=order_id,
        from_statuses=[Order.Status.PLACED],
        to_status=Order.Status.PICKED,
        staff_id=staff_id,
        now=now,
        field="picked_at",
    )


def mark_order_delivered(*, order_id: int, staff_id: int, now: dt.datetime | None = None) -> None:
    _move_order(
        order_id=order_id,
        from_statuses=[Order.Status.PICKED],
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
        if order.status not in (Order.Status.PLACED, Order.Status.PICKED):
            raise errors.OrderStateConflict()
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
    return order
