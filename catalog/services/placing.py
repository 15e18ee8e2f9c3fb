"""The hot path of a kiosk order, inside ``place_order``'s transaction: the inmate's accounts
locked, the stock, kiosk, grade and restrictions read in one statement, the spending limit and
the money checked, then the order, its stock and the ledger's debit written."""

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from commissary import errors
from commissary.db import prepared_cursor, replan_when_doubled
from facilities.models import spending_period_start
from facilities.selectors import SPENDING_LIMIT_SQL, festival_month_key
from ledger import memos
from ledger import services as ledger_services
from ledger.locks import lock_inmate_accounts
from ledger.services.posting import execute

from .. import selectors
from ..models import (
    Order,
    OrderItem,
    Product,
    Restriction,
    localized,
)
from .checks import OrderLine
from .order_writes import _OrderWrites


class _KeyTaken(errors.DomainError):
    """The key already holds a refusal: the order is not tried again."""


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
    """A stock row as read, with the price in force (and its change) and the names."""

    id: int
    product_id: int
    stock: int
    price_fen: int
    max_per_order: int
    name_zh: str
    name_en: str
    price_change_id: int | None


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
    # locks. Tested like any other service: tests/catalog, tests/kiosk. One function of about
    # 160 lines, in four numbered steps, because each step decides on what the step before
    # read under its locks; the statements themselves are built by _OrderWrites.
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
        # The price is the one in force at the order's instant: the product's latest price
        # change effective by then (its index answers it), else its list price; the line
        # keeps which change it was charged at.
        execute(
            cursor,
            f"SELECT {_INMATE_COLUMNS}, {next_id}, fp.id, fp.product_id, fp.stock, "  # noqa: S608 - table and column names, placeholder lists and a constant lock clause; values are bound
            "COALESCE(pc.price_fen, p.price_fen), p.max_per_order, p.name_zh, p.name_en, pc.id "
            "FROM facilities_inmate i LEFT JOIN facilities_grade g ON g.id = i.grade_id "
            "JOIN catalog_facilityproduct fp ON fp.facility_id = %s "
            f"AND fp.product_id IN ({', '.join(['%s'] * len(wanted))}) AND fp.is_available "
            "JOIN catalog_product p ON p.id = fp.product_id AND p.is_active "
            "LEFT JOIN catalog_pricechange pc ON pc.id = (SELECT c.id FROM catalog_pricechange c "
            "WHERE c.facility_product_id = fp.id AND c.effective_from <= %s "
            "ORDER BY c.effective_from DESC, c.id DESC LIMIT 1) "
            "WHERE i.id = %s ORDER BY fp.id",
            [*inmate_params, locked.facility_id, *wanted, now, inmate_id],
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
                price_change_id=offer_of[line.product_id].price_change_id,
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
        memo = memos.purchase_memo(order.pk)
        purchase = ledger_services.post_purchase(
            cursor,
            locked=locked,
            amount_fen=total_fen,
            idempotency_scope=scope,
            idempotency_key=idempotency_key,
            request_hash=ledger_services.purchase_request_hash(
                inmate_id=inmate_id, amount_fen=total_fen, memo=memo
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
