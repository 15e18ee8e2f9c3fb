"""Reads of the catalog and orders that the kiosk API and the admin share. Amounts stay
integer fen; times are ISO 8601 with the facility's offset.

About 470 lines of short reads, together because the kiosk API and the admin must answer
the same.
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from commissary.money import format_fen
from facilities.models import Inmate, spending_period_start
from facilities.selectors import spending_limit_for

from .models import (
    Dispute,
    FacilityProduct,
    Order,
    OrderItem,
    PriceChange,
    Restriction,
    localized,
)


def iso(instant: dt.datetime, timezone_name: str) -> str:
    return instant.astimezone(ZoneInfo(timezone_name)).isoformat()


def line_product_name(*, order_id: int, name_en: str, language: str) -> str | None:
    """A refunded line's product in ``language``, for the journal's memos (``ledger.memos``
    asks, given the order and the English name the memo holds): the name as sold, which the
    order line keeps in both languages; None (the memo's name) for English, or where the order
    has no single line of that name."""
    if not language.lower().startswith("zh"):
        return None
    names = list(
        OrderItem.objects.filter(order_id=order_id, name_en=name_en)
        .values_list("name_zh", flat=True)
        .distinct()[:2]
    )
    return names[0] if len(names) == 1 and names[0] else None


def item_payload(item: OrderItem, language: str | None = None) -> dict:
    return {
        "product_id": item.product_id,
        "name": localized(item.name_zh, item.name_en, language),
        "quantity": item.quantity,
        "unit_price": item.unit_price_fen,
        "line_total": item.line_total_fen,
    }


def order_payload(
    order: Order, *, items, balance_after_fen: int, timezone_name: str, language=None
) -> dict:
    """The kiosk's answer to a placed order, as the contract shapes it."""
    return {
        "id": order.pk,
        "status": order.status,
        "items": [item_payload(item, language) for item in items],
        "total": order.total_fen,
        "currency": order.currency,
        "balance_after": balance_after_fen,
        "created_at": iso(order.created_at, timezone_name),
    }


def order_answer(order: Order, *, timezone_name: str, language=None) -> dict:
    """An order as ``GET orders`` shows it: the placed answer's shape, with today's status and
    the balance as it was right after the order."""
    return order_payload(
        order,
        items=order.items.all(),
        balance_after_fen=order.placed_response.get("balance_after", 0),
        timezone_name=timezone_name,
        language=language,
    )


def dispute_payload(dispute: Dispute, *, timezone_name: str) -> dict:
    """A dispute as the kiosk sees it (``POST orders/{id}/disputes``, ``GET orders/{id}``)."""
    return {
        "id": dispute.pk,
        "order": dispute.order_id,
        "line": dispute.line_id,
        "reason": dispute.reason,
        "text": dispute.text,
        "status": dispute.status,
        "answer": dispute.answer,
        "refunded": dispute.refund_fen,
        "created_at": iso(dispute.created_at, timezone_name),
        "deadline": iso(dispute.deadline, timezone_name),
    }


def order_detail_answer(order: Order, *, timezone_name: str, language=None) -> dict:
    """``GET orders/{id}``: the order's answer, each item with its line id (what a dispute
    names) and what has been refunded of it, and the order's disputes, oldest first."""
    answer = order_answer(order, timezone_name=timezone_name, language=language)
    for item, shown in zip(order.items.all(), answer["items"], strict=True):
        shown["line_id"] = item.pk
        shown["refunded"] = item.refunded_fen
    answer["disputes"] = [
        dispute_payload(dispute, timezone_name=timezone_name)
        for dispute in order.disputes.order_by("created_at", "id")
    ]
    return answer


def active_restrictions(*, inmate_id: int, now: dt.datetime) -> list[Restriction]:
    return list(
        Restriction.objects.filter(inmate_id=inmate_id).filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=now)
        )
    )


def with_prices(offers, *, now: dt.datetime):
    """``offers`` (facility products) annotated, in the same query, with ``price_now_fen`` (the
    price in force at ``now``: the latest change effective by then, else the list price) and
    the next change already filed: ``next_price_fen`` and ``next_price_on`` (its local date),
    None when there is none."""
    in_force = PriceChange.objects.filter(
        facility_product=OuterRef("pk"), effective_from__lte=now
    ).order_by("-effective_from", "-id")
    upcoming = PriceChange.objects.filter(
        facility_product=OuterRef("pk"), effective_from__gt=now
    ).order_by("effective_from", "id")
    return offers.annotate(
        price_now_fen=Coalesce(Subquery(in_force.values("price_fen")[:1]), F("product__price_fen")),
        cost_now_fen=Subquery(in_force.values("cost_fen")[:1]),
        price_changed_on=Subquery(in_force.values("effective_on")[:1]),
        next_price_fen=Subquery(upcoming.values("price_fen")[:1]),
        next_price_on=Subquery(upcoming.values("effective_on")[:1]),
    )


@dataclass(frozen=True)
class Markup:
    facility: str
    sku: str
    name: str
    cost_fen: int | None
    price_fen: int
    currency: str

    @property
    def markup_bp(self) -> int | None:
        if not self.cost_fen:
            return None
        return (self.price_fen - self.cost_fen) * 10_000 // self.cost_fen

    @property
    def cost(self) -> str:
        return format_fen(self.cost_fen, self.currency)

    @property
    def price(self) -> str:
        return format_fen(self.price_fen, self.currency)

    @property
    def markup_percent(self) -> str:
        return "—" if self.markup_bp is None else f"{self.markup_bp / 100:.2f}%"


def products_by_markup(*, offers, now: dt.datetime) -> list[Markup]:
    """The price in force of each facility product against its cost, highest markup first;
    products sold at their list price (no cost filed) last."""
    rows = [
        Markup(
            facility=offer.facility.name,
            sku=offer.product.sku,
            name=offer.product.name(),
            cost_fen=offer.cost_now_fen,
            price_fen=offer.price_now_fen,
            currency=offer.facility.currency,
        )
        for offer in with_prices(offers, now=now)
    ]
    return sorted(rows, key=lambda row: (row.markup_bp is None, -(row.markup_bp or 0), row.sku))


def catalog_for(*, inmate: Inmate, now: dt.datetime | None = None):
    """The products this inmate may buy at its facility: on sale there, active, not barred for
    the inmate by product or category; nothing while the inmate's commissary is suspended."""
    now = now or timezone.now()
    restrictions = Restriction.objects.filter(inmate_id=inmate.pk).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )
    offers = (
        FacilityProduct.objects.filter(
            facility_id=inmate.facility_id, is_available=True, product__is_active=True
        )
        .select_related("product", "product__category")
        .exclude(
            Exists(
                restrictions.filter(
                    Q(product_id=OuterRef("product_id"))
                    | Q(category_id=OuterRef("product__category_id"))
                )
            )
        )
        .order_by("product__category__sort_order", "product__sku", "id")
    )
    if restrictions.filter(kind=Restriction.Kind.SUSPENSION).exists():
        return offers.none()
    return with_prices(offers, now=now)


@dataclass(frozen=True)
class Spending:
    period: str | None
    spent_fen: int
    limit_fen: int | None

    @property
    def remaining_fen(self) -> int | None:
        return None if self.limit_fen is None else max(0, self.limit_fen - self.spent_fen)


def spending_of(*, inmate: Inmate, now: dt.datetime | None = None) -> Spending:
    """What the inmate has spent in the grade's current week or month (cancelled orders give
    their room back) against the grade's limit at ``now`` (its festival limit in a festival
    month of the facility; None: no limit, counted by the month)."""
    now = now or timezone.now()
    grade = inmate.grade
    timezone_name = inmate.facility.timezone
    period = grade.spending_period if grade is not None else "month"
    start = spending_period_start(now, timezone_name, period)
    spent = (
        Order.objects.filter(inmate_id=inmate.pk, created_at__gte=start)
        .exclude(status=Order.Status.CANCELLED)
        .aggregate(total=Sum("total_fen"))["total"]
        or 0
    )
    limit = spending_limit_for(grade, now, timezone_name)
    return Spending(period=period, spent_fen=spent, limit_fen=limit)


def orders_of(*, inmate_id: int):
    return Order.objects.filter(inmate_id=inmate_id).prefetch_related("items")


def pick_list(*, orders) -> list[dict]:
    """Orders to pick, grouped by housing unit, then inmate, with each unit's product totals."""
    units: dict[str, dict] = {}
    for order in orders.select_related("inmate", "inmate__housing_unit").prefetch_related("items"):
        unit_name = order.inmate.housing_unit.name if order.inmate.housing_unit else "—"
        unit = units.setdefault(unit_name, {"name": unit_name, "orders": [], "totals": {}})
        unit["orders"].append(order)
        for item in order.items.all():
            key = (item.product_id, item.name_zh, item.name_en)
            unit["totals"][key] = unit["totals"].get(key, 0) + item.quantity
    return [
        {
            "name": unit["name"],
            "orders": unit["orders"],
            "totals": [
                {"name_zh": zh, "name_en": en, "quantity": quantity}
                for (_, zh, en), quantity in sorted(unit["totals"].items())
            ],
        }
        for _, unit in sorted(units.items())
    ]


LOW_STOCK_AT = 10  # units left at which a product on sale shows as running low


def low_stock_products(*, facility, at_most: int = LOW_STOCK_AT) -> list[FacilityProduct]:
    """Products on sale at the facility with ``at_most`` units left or fewer, fewest first
    (the staff dashboard's list)."""
    return list(
        FacilityProduct.objects.filter(
            facility=facility, is_available=True, product__is_active=True, stock__lte=at_most
        )
        .select_related("product")
        .order_by("stock", "product__sku")
    )


def sales_by_product(*, facility, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    """Rows of (SKU, Chinese name, English name, units sold, sales fen) for the orders placed
    at the facility in [start, end) and not cancelled (a cancelled order was refunded)."""
    return [
        (row["product__sku"], row["name_zh"], row["name_en"], row["units"], row["sales_fen"])
        for row in OrderItem.objects.filter(
            order__facility=facility,
            order__created_at__gte=start,
            order__created_at__lt=end,
        )
        .exclude(order__status=Order.Status.CANCELLED)
        .values("product__sku", "name_zh", "name_en")
        .annotate(units=Sum("quantity"), sales_fen=Sum("line_total_fen"))
        .order_by("-sales_fen", "product__sku")
    ]


@dataclass(frozen=True)
class PublicPrice:
    """One line of a public price list: nothing about stock, sales or inmates."""

    sku: str
    category: str
    name: str
    unit: str
    price_fen: int
    changed_on: dt.date | None
    next_price_fen: int | None
    next_price_on: dt.date | None


def public_price_list(*, facility, now: dt.datetime, language: str | None = None):
    """The products on sale at ``facility`` with the price in force at ``now``, the local date
    of its last change (None: the list price, never changed here) and a rise already
    announced; by category, then SKU. Only these fields are read (no stock, no sales)."""
    offers = with_prices(
        FacilityProduct.objects.filter(
            facility=facility, is_available=True, product__is_active=True
        ),
        now=now,
    ).order_by("product__category__sort_order", "product__category__code", "product__sku")
    rows = offers.values(
        "product__sku",
        "product__name_zh",
        "product__name_en",
        "product__unit_zh",
        "product__unit_en",
        "product__category__name_zh",
        "product__category__name_en",
        "price_now_fen",
        "price_changed_on",
        "next_price_fen",
        "next_price_on",
    )
    return [
        PublicPrice(
            sku=row["product__sku"],
            category=localized(
                row["product__category__name_zh"], row["product__category__name_en"], language
            ),
            name=localized(row["product__name_zh"], row["product__name_en"], language),
            unit=localized(row["product__unit_zh"], row["product__unit_en"], language),
            price_fen=row["price_now_fen"],
            changed_on=row["price_changed_on"],
            next_price_fen=row["next_price_fen"],
            next_price_on=row["next_price_on"],
        )
        for row in rows
    ]


def public_price_history(*, facility, sku: str):
    """(product, its price changes at ``facility``, newest first, as dicts of the local date
    it took or takes effect, the price and the price before); None when the product is not
    on sale there. Costs, who filed a change and why stay in the admin."""
    offer = (
        FacilityProduct.objects.filter(
            facility=facility, is_available=True, product__is_active=True, product__sku=sku
        )
        .select_related("product", "product__category")
        .only(
            "id",
            "product__sku",
            "product__name_zh",
            "product__name_en",
            "product__unit_zh",
            "product__unit_en",
            "product__price_fen",
            "product__category__name_zh",
            "product__category__name_en",
        )
        .first()
    )
    if offer is None:
        return None
    changes = list(
        PriceChange.objects.filter(facility_product=offer)
        .order_by("-effective_from", "-id")
        .values("effective_on", "effective_from", "price_fen", "previous_price_fen")
    )
    return offer.product, changes


@dataclass(frozen=True)
class DisputeRate:
    """Disputes and refunds of one product, category or deciding staff member."""

    name: str
    lines: int  # order lines sold (products and categories); decided disputes (staff)
    disputes: int
    refunded_fen: int
    sales_fen: int
    decided: int
    decided_in_time: int
    hours_to_decide: float | None

    @property
    def dispute_rate(self) -> str:
        return f"{self.disputes * 100 / self.lines:.1f}%" if self.lines else "—"

    @property
    def refund_rate(self) -> str:
        return f"{self.refunded_fen * 100 / self.sales_fen:.2f}%" if self.sales_fen else "—"

    @property
    def in_time(self) -> str:
        return f"{self.decided_in_time}/{self.decided}"

    @property
    def refunded(self) -> str:
        return format_fen(self.refunded_fen)


def dispute_rates(*, disputes, lines, by: str) -> list[DisputeRate]:
    """Disputes and refunds grouped ``by`` "product", "category" or "staff", from the scoped
    ``disputes`` and order ``lines`` (not cancelled): how many lines sold, disputed, what was
    refunded of them (short at picking and on disputes) against their sales, and how many
    disputes were decided within their deadline, with the mean hours to a decision."""
    key = {
        "product": ("line__product__sku", "product__sku"),
        "category": ("line__product__category__code", "product__category__code"),
        "staff": ("decided_by__email", None),
    }[by]
    names: dict[str, str] = {}
    sold: dict[str, tuple[int, int, int]] = {}
    if key[1] is not None:
        for row in (
            lines.exclude(order__status=Order.Status.CANCELLED)
            .values(
                key[1],
                "name_zh",
                "name_en",
                "product__category__name_zh",
                "product__category__name_en",
            )
            .annotate(count=Count("id"), sales=Sum("line_total_fen"), refunded=Sum("refunded_fen"))
        ):
            group = row[key[1]]
            names[group] = (
                localized(row["name_zh"], row["name_en"])
                if by == "product"
                else localized(row["product__category__name_zh"], row["product__category__name_en"])
            )
            count, sales, refunded = sold.get(group, (0, 0, 0))
            sold[group] = (count + row["count"], sales + row["sales"], refunded + row["refunded"])
    counted: dict[str, dict] = {}
    for dispute in disputes.select_related("line__product__category", "decided_by"):
        if by == "staff":
            if dispute.decided_by is None:
                continue
            group = dispute.decided_by.email or dispute.decided_by.get_username()
            names[group] = group
        elif by == "product":
            group = dispute.line.product.sku
        else:
            group = dispute.line.product.category.code
        entry = counted.setdefault(group, {"disputes": 0, "decided": 0, "in_time": 0, "hours": []})
        entry["disputes"] += 1
        if dispute.decided_at is not None:
            entry["decided"] += 1
            entry["in_time"] += dispute.decided_at <= dispute.deadline
            entry["hours"].append((dispute.decided_at - dispute.created_at).total_seconds() / 3600)
        if by == "staff":
            count, sales, refunded = sold.get(group, (0, 0, 0))
            line_total_fen = dispute.line.line_total_fen
            sold[group] = (count + 1, sales + line_total_fen, refunded + dispute.refund_fen)
    rows = []
    for group in set(sold) | set(counted):
        count, sales, refunded = sold.get(group, (0, 0, 0))
        entry = counted.get(group, {"disputes": 0, "decided": 0, "in_time": 0, "hours": []})
        hours = entry["hours"]
        rows.append(
            DisputeRate(
                name=names.get(group, group),
                lines=count,
                disputes=entry["disputes"],
                refunded_fen=refunded,
                sales_fen=sales,
                decided=entry["decided"],
                decided_in_time=entry["in_time"],
                hours_to_decide=round(sum(hours) / len(hours), 1) if hours else None,
            )
        )
    return sorted(rows, key=lambda row: (-row.disputes, -row.refunded_fen, row.name))
