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
from commissary.db import prepared_cursor, replan_when_doubled
from facilities.models import spending_period_start
from facilities.selectors import SPENDING_LIMIT_SQL, festival_month_key
from ledger import services as ledger_services
from ledger.locks import lock_inmate_accounts
from ledger.services.posting import execute

from . import selectors
from .models import (
    FacilityProduct,
    Order,
    OrderItem,
    Product,
    RefusedOrder,
    Restriction,
    localized,
)

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


# Refusals a kiosk gets back, as they were, when it replays the key (a body that fails
# validation, 400, is not kept: it was never taken up).
_KEPT_REFUSALS = (
    errors.InsufficientFunds,
    errors.SpendingLimitExceeded,
    errors.OutOfStock,
    errors.ProductRestricted,
    errors.AccountFrozen,
    errors.InmateReleased,
    errors.ProductNotFound,
    errors.InmateNotFound,
)


class _KeyTaken(errors.DomainError):
    """The key already holds a refusal: the order is not tried again."""


def _answer_by_key(scope: str, idempotency_key: str, request_hash: str) -> Order | None:
    """The first answer under this key: its order, or its refusal raised again as it was
    (``RepeatedRefusal``); None when the key is unused. A different request under the same key
    is refused with IdempotencyConflict."""
    with connection.cursor() as cursor:
        execute(
            cursor,
            "SELECT id, request_hash, NULL, NULL FROM catalog_order "
            "WHERE idempotency_scope = %s AND idempotency_key = %s "
            "UNION ALL SELECT NULL, request_hash, code, message FROM catalog_refusedorder "
            "WHERE idempotency_scope = %s AND idempotency_key = %s",
            [scope, idempotency_key, scope, idempotency_key],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    order_id, first_hash, code, message = row
    if first_hash != request_hash:
        raise errors.IdempotencyConflict()
    if order_id is None:
        raise errors.RepeatedRefusal(code, message)
    return Order.objects.get(pk=order_id)


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
    (its stored answer in ``placed_response``), or raises its first refusal again (kept as a
    ``RefusedOrder``); the same key with anything else raises IdempotencyConflict. Any refusal
    raises one DomainError and changes nothing but that record.
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
    except (errors.DomainError, IntegrityError) as failure:
        # A replay fails (on a unique key, or earlier: the stock or money it would need again
        # may be gone by now, or its key holds a refusal) and then finds the first answer. The
        # same key racing its first request waits on the unique index, fails, and finds the
        # committed first answer the same way. Only when there is none is the failure real.
        earlier = _answer_by_key(scope, idempotency_key, request_hash)
        if earlier is not None:
            return earlier
        if not isinstance(failure, _KEPT_REFUSALS):
            raise
        kept = _keep_refusal(
            failure,
            inmate_id=inmate_id,
            device_id=device_id,
            scope=scope,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            now=now,
        )
        if kept is not None:
            return kept
        raise


def _keep_refusal(
    refusal: errors.DomainError,
    *,
    inmate_id: int,
    device_id: int,
    scope: str,
    idempotency_key: str,
    request_hash: str,
    now: dt.datetime,
) -> Order | None:
    """Keep a refusal under its key, so a replay gets it back. Under the inmate's account lock,
    which every order of the inmate is written under: a replay of the key that placed its order
    meanwhile is found (and returned instead), and a replay still to come finds the refusal."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        earlier = _answer_by_key(scope, idempotency_key, request_hash)
        if earlier is not None:
            return earlier
        try:
            with transaction.atomic():
                RefusedOrder.objects.create(
                    facility_id=locked.facility_id,
                    inmate_id=inmate_id,
                    device_id=device_id,
                    idempotency_scope=scope,
                    idempotency_key=idempotency_key,
                    request_hash=request_hash,
                    code=refusal.code,
                    message=str(refusal.message),
                    created_at=now,
                )
        except IntegrityError:
            # The same kiosk sent the key for another inmate at the same moment: its answer
            # holds the key (and this request conflicts with it).
            _answer_by_key(scope, idempotency_key, request_hash)
    return None


# Whether the key already holds a refusal (parameters 1 and 2), whether the kiosk (3) is an
# active kiosk of the inmate's facility, the grade's limit at the order's instant (4: its
# festival month key, see facilities.selectors) and period, and whether a restriction is in
# force at the order's instant (5).
_INMATE_COLUMNS = (
    "EXISTS (SELECT 1 FROM catalog_refusedorder x "  # noqa: S608 - constant SQL; values bound
    "WHERE x.idempotency_scope = %s AND x.idempotency_key = %s), "
    "EXISTS (SELECT 1 FROM facilities_kioskdevice d "
    "WHERE d.id = %s AND d.facility_id = i.facility_id AND d.is_active), "
    f"{SPENDING_LIMIT_SQL}, g.spending_period, "
    "EXISTS (SELECT 1 FROM catalog_restriction r WHERE r.inmate_id = i.id "
    "AND (r.ends_at IS NULL OR r.ends_at > %s))"
)
_INMATE_COLUMN_COUNT = 5


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
    is_postgresql = connection.vendor == "postgresql"
    with prepared_cursor() as cursor:
        # 1. The inmate's accounts, first, as every money operation takes them.
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        # 2. The stock rows, in primary-key order, read with whether the key holds a refusal,
        # the kiosk, the inmate's grade and whether any restriction applies (one statement;
        # the decisions keep their order). On PostgreSQL the order's id comes from its sequence
        # in the same statement (once: an uncorrelated subquery), so the order can be written
        # whole, once, at the end. The stock is read, not locked: every order of a popular
        # product would queue on its row for the rest of the transaction. It is locked by the
        # last statement, which takes the units only where they are still there (see
        # ``_OrderWrites.stock_order_and_items``); the read answers the refusals early.
        wanted = {line.product_id: line.quantity for line in lines}
        inmate_params = [
            scope,
            idempotency_key,
            device_id,
            festival_month_key(now, locked.timezone),
            now,
        ]
        next_id = (
            "(SELECT nextval(pg_get_serial_sequence('catalog_order', 'id')))"
            if is_postgresql
            else "NULL"
        )
        execute(
            cursor,
            f"SELECT {_INMATE_COLUMNS}, {next_id}, fp.id, fp.product_id, fp.stock, p.price_fen, "  # noqa: S608 - table and column names, placeholder lists and a constant lock clause; values are bound
            "p.max_per_order, p.name_zh, p.name_en "
            "FROM facilities_inmate i LEFT JOIN facilities_grade g ON g.id = i.grade_id "
            "JOIN catalog_facilityproduct fp ON fp.facility_id = %s "
            f"AND fp.product_id IN ({', '.join(['%s'] * len(wanted))}) AND fp.is_available "
            "JOIN catalog_product p ON p.id = fp.product_id AND p.is_active "
            "WHERE i.id = %s ORDER BY fp.id",
            [*inmate_params, locked.facility_id, *wanted, inmate_id],
        )
        rows = cursor.fetchall()
        if rows:
            inmate_row = rows[0][:_INMATE_COLUMN_COUNT]
            order_id = rows[0][_INMATE_COLUMN_COUNT]
        else:  # no such product here: the key, kiosk and restrictions still answer first
            execute(
                cursor,
                f"SELECT {_INMATE_COLUMNS} FROM facilities_inmate i "  # noqa: S608
                "LEFT JOIN facilities_grade g ON g.id = i.grade_id WHERE i.id = %s",
                [*inmate_params, inmate_id],
            )
            inmate_row, order_id = cursor.fetchone(), None
        is_refused_before, is_device_here, limit_fen, period, is_restricted = inmate_row
        if is_refused_before:
            raise _KeyTaken()
        if locked.is_closed:
            raise errors.InmateReleased()
        if locked.is_frozen:
            raise errors.AccountFrozen()
        if not is_device_here:
            raise errors.InmateNotFound()
        if is_restricted:
            _refuse_restricted(inmate_id=inmate_id, lines=lines, now=now)
        offers = [_Offer(*row[_INMATE_COLUMN_COUNT + 1 :]) for row in rows]
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
                raise _out_of_stock(offer, left=offer.stock)
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

        # 4. The writes: the order's stock (the CHECK stock >= 0 backs the test above), the
        # order and its lines, the ledger's debit, and the order's first answer.
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
            created_at=now,
        )
        writes = _OrderWrites(cursor, order=order, items=order_items, offers=offers, wanted=wanted)
        if order_id is None:  # SQLite: the id comes from the insert
            writes.stock()
            writes.order_and_items()
        # The debit, under the lock taken in step 1 (the ledger's own entry point would take
        # it again and read its transaction back).
        memo = f"Commissary order #{order.pk}"
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
        order.purchase_id = purchase.pk
        order.placed_response = selectors.order_payload(
            order,
            items=order_items,
            balance_after_fen=locked.spendable_fen - total_fen,
            timezone_name=locked.timezone,
        )
        if order_id is None:
            writes.answer()
        elif not writes.stock_order_and_items():  # PostgreSQL: one statement
            _refuse_out_of_stock(cursor, offers=offers, wanted=wanted)
    replan_when_doubled(order.pk, ("catalog_order", "catalog_orderitem"))
    return order


def _refuse_out_of_stock(cursor, *, offers: list[_Offer], wanted: dict[int, int]) -> None:
    """Another order took the units between the read and the write: say which are short."""
    execute(
        cursor,
        "SELECT id, stock FROM catalog_facilityproduct "  # noqa: S608 - placeholder list; values are bound
        f"WHERE id IN ({', '.join(['%s'] * len(offers))})",
        [offer.id for offer in offers],
    )
    stock = dict(cursor.fetchall())
    for offer in offers:
        if stock[offer.id] < wanted[offer.product_id]:
            raise _out_of_stock(offer, left=stock[offer.id])
    raise errors.OutOfStock()


def _out_of_stock(offer: _Offer, *, left: int) -> errors.OutOfStock:
    return errors.OutOfStock(
        _("Only %(count)d of %(name)s are left.")
        % {"count": left, "name": localized(offer.name_zh, offer.name_en)}
    )


class _OrderWrites:
    """The statements that write a placed order. PostgreSQL writes the stock, the whole order
    (its id taken from the sequence beforehand) and its lines in one statement, after the
    debit; SQLite, which has neither sequences nor writes inside WITH, writes stock, order and
    lines first and the order's debit and answer after."""

    def __init__(self, cursor, *, order: Order, items: list[OrderItem], offers, wanted):
        self.cursor, self.order, self.items = cursor, order, items
        self.stock_ids = [offer.id for offer in offers]
        self.stock_taken = [wanted[offer.product_id] for offer in offers]

    def _stock_sql(self) -> tuple[str, list]:
        return (
            "UPDATE catalog_facilityproduct SET stock = stock - CASE id "  # noqa: S608 - placeholder lists; values are bound
            + " ".join("WHEN %s THEN %s" for _ in self.stock_ids)
            + " END WHERE id IN ("
            + ", ".join("%s" for _ in self.stock_ids)
            + ")",
            [v for pair in zip(self.stock_ids, self.stock_taken, strict=True) for v in pair]
            + self.stock_ids,
        )

    def _items_sql(self) -> tuple[str, list]:
        return (
            "INSERT INTO catalog_orderitem (order_id, product_id, name_zh, name_en, quantity, "  # noqa: S608 - placeholder lists; values are bound
            "unit_price_fen, line_total_fen) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(self.items)),
            [
                value
                for item in self.items
                for value in (
                    self.order.pk,
                    item.product_id,
                    item.name_zh,
                    item.name_en,
                    item.quantity,
                    item.unit_price_fen,
                    item.line_total_fen,
                )
            ],
        )

    _ORDER_COLUMNS = (
        "facility_id, inmate_id, device_id, status, total_fen, currency, idempotency_scope, "
        "idempotency_key, request_hash, placed_response, purchase_id, created_at, cancel_reason"
    )

    def _order_params(self) -> list:
        order = self.order
        return [
            order.facility_id,
            order.inmate_id,
            order.device_id,
            order.status,
            order.total_fen,
            order.currency,
            order.idempotency_scope,
            order.idempotency_key,
            order.request_hash,
            json.dumps(order.placed_response),
            order.purchase_id,
            order.created_at,
            "",
        ]

    def stock(self) -> None:
        self.cursor.execute(*self._stock_sql())

    def order_and_items(self) -> None:
        execute(
            self.cursor,
            f"INSERT INTO catalog_order ({self._ORDER_COLUMNS}) "  # noqa: S608 - constant column list; values are bound
            f"VALUES ({', '.join(['%s'] * 13)}) RETURNING id",
            self._order_params(),  # no purchase and an empty answer yet: ``answer`` sets them
        )
        self.order.pk = self.cursor.fetchone()[0]
        for item in self.items:
            item.order_id = self.order.pk
        self.cursor.execute(*self._items_sql())

    def answer(self) -> None:
        self.cursor.execute(
            "UPDATE catalog_order SET purchase_id = %s, placed_response = %s WHERE id = %s",
            [self.order.purchase_id, json.dumps(self.order.placed_response), self.order.pk],
        )

    def stock_order_and_items(self) -> bool:
        """PostgreSQL: the stock rows locked in primary-key order (the lock order) and their
        units taken where they are still there, the whole order written only if every line's
        units were, and its lines: one statement. False, with nothing written, when another
        order took the units first."""
        items = self.items
        stock_rows = ", ".join(["%s"] * len(self.stock_ids))
        wants = ", ".join(["(%s::bigint, %s::bigint)"] * len(self.stock_ids))
        lines = ", ".join(["(%s::bigint, %s, %s, %s::bigint, %s::bigint, %s::bigint)"] * len(items))
        self.cursor.execute(
            "WITH locked AS (SELECT id FROM catalog_facilityproduct "  # noqa: S608 - placeholder lists and constant column names; values are bound
            f"WHERE id IN ({stock_rows}) ORDER BY id FOR UPDATE), "
            "taken AS (UPDATE catalog_facilityproduct fp SET stock = fp.stock - want.quantity "
            f"FROM locked, (VALUES {wants}) AS want (id, quantity) "
            "WHERE fp.id = locked.id AND fp.id = want.id AND fp.stock >= want.quantity "
            "RETURNING fp.id), "
            f"placed AS (INSERT INTO catalog_order (id, {self._ORDER_COLUMNS}) "
            "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s "
            "WHERE (SELECT count(*) FROM taken) = %s RETURNING id) "
            "INSERT INTO catalog_orderitem (order_id, product_id, name_zh, name_en, quantity, "
            "unit_price_fen, line_total_fen) "
            "SELECT placed.id, line.product_id, line.name_zh, line.name_en, line.quantity, "
            "line.unit_price_fen, line.line_total_fen FROM placed, "
            f"(VALUES {lines}) AS line (product_id, name_zh, name_en, quantity, "
            "unit_price_fen, line_total_fen) RETURNING order_id",
            [
                *self.stock_ids,
                *[v for pair in zip(self.stock_ids, self.stock_taken, strict=True) for v in pair],
                self.order.pk,
                *self._order_params(),
                len(self.stock_ids),
                *[
                    value
                    for item in items
                    for value in (
                        item.product_id,
                        item.name_zh,
                        item.name_en,
                        item.quantity,
                        item.unit_price_fen,
                        item.line_total_fen,
                    )
                ],
            ],
        )
        return self.cursor.fetchone() is not None


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
