"""The demo catalog: a few dozen products in a few categories, in stock at the demo facility,
and management grades with their monthly spending limits (higher in the facility's festival
month, the coming Spring Festival), so a kiosk can shop right after ``seed_demo``. Idempotent:
a second run finds what the first made. The demo's purchases are real kiosk orders
(``place_demo_orders``), so the sales report and the dashboard agree on the demo."""

import datetime as dt
import hashlib

from django.db import connection, models, transaction
from django.utils import timezone

from commissary.errors import DomainError
from facilities.models import Facility, FestivalMonth, Grade
from ledger.models import Account, Deposit
from ledger.services import kiosk_scope

from . import services
from .models import Category, Dispute, FacilityProduct, Order, PriceChange, Product
from .services import disputes, prices

# (code, Chinese, English): categories in display order
CATEGORIES = (
    ("food", "食品", "Food"),
    ("drinks", "饮料", "Drinks"),
    ("hygiene", "日用品", "Hygiene"),
    ("stationery", "文具", "Stationery"),
)
# (SKU, category, Chinese, English, price in fen, most per order)
PRODUCTS = (
    ("FOOD-001", "food", "方便面", "Instant noodles", 450, 10),
    ("FOOD-002", "food", "火腿肠", "Ham sausage", 300, 10),
    ("FOOD-003", "food", "榨菜", "Pickled mustard", 250, 10),
    ("FOOD-004", "food", "饼干", "Biscuits", 650, 5),
    ("FOOD-005", "food", "花生", "Peanuts", 800, 5),
    ("FOOD-006", "food", "巧克力", "Chocolate bar", 1_200, 5),
    ("FOOD-007", "food", "奶粉", "Milk powder", 4_500, 2),
    ("FOOD-008", "food", "牛肉干", "Beef jerky", 2_800, 3),
    ("FOOD-009", "food", "苹果", "Apples (bag)", 1_500, 3),
    ("FOOD-010", "food", "面包", "Bread", 600, 5),
    ("DRNK-001", "drinks", "矿泉水", "Mineral water", 200, 12),
    ("DRNK-002", "drinks", "绿茶", "Green tea", 350, 12),
    ("DRNK-003", "drinks", "牛奶", "Milk", 450, 6),
    ("DRNK-004", "drinks", "速溶咖啡", "Instant coffee", 1_800, 2),
    ("DRNK-005", "drinks", "果汁", "Fruit juice", 500, 6),
    ("DRNK-006", "drinks", "茶叶", "Tea leaves", 2_500, 2),
    ("HYGN-001", "hygiene", "牙膏", "Toothpaste", 1_200, 2),
    ("HYGN-002", "hygiene", "牙刷", "Toothbrush", 500, 2),
    ("HYGN-003", "hygiene", "肥皂", "Soap", 400, 3),
    ("HYGN-004", "hygiene", "洗发水", "Shampoo", 1_900, 1),
    ("HYGN-005", "hygiene", "毛巾", "Towel", 1_500, 2),
    ("HYGN-006", "hygiene", "卫生纸", "Toilet paper", 1_000, 3),
    ("HYGN-007", "hygiene", "洗衣粉", "Washing powder", 1_300, 1),
    ("HYGN-008", "hygiene", "袜子", "Socks", 800, 3),
    ("STAT-001", "stationery", "信纸", "Writing paper", 300, 5),
    ("STAT-002", "stationery", "信封", "Envelopes", 200, 10),
    ("STAT-003", "stationery", "圆珠笔", "Ballpoint pen", 150, 3),
    ("STAT-004", "stationery", "笔记本", "Notebook", 500, 3),
    ("STAT-005", "stationery", "邮票", "Stamps", 120, 10),
    ("STAT-006", "stationery", "书", "Paperback book", 2_000, 2),
)
DEMO_STOCK = 500
# Management grades and their monthly limits, as Chinese prisons set them (yuan 800/600/500/400).
GRADES = (
    ("一级 Grade 1", 80_000),
    ("二级 Grade 2", 60_000),
    ("三级 Grade 3", 50_000),
    ("四级 Grade 4", 40_000),
)
# Each grade's limit in a festival month (yuan 1000/800/700/600), and the month declared one.
FESTIVAL_LIMITS_FEN = {
    "一级 Grade 1": 100_000,
    "二级 Grade 2": 80_000,
    "三级 Grade 3": 70_000,
    "四级 Grade 4": 60_000,
}
FESTIVAL_MONTH = (dt.date(2027, 2, 1), "春节 Spring Festival")


# The demo's costs: each list price about 30% over its cost (under the demo's markup cap).
DEMO_MARKUP_PERCENT = 30
DEMO_FIRST_PRICE_REASON = "首个价格 First price"


def demo_cost_fen(price_fen: int) -> int:
    return max(1, -(-price_fen * 100 // (100 + DEMO_MARKUP_PERCENT)))


def seed_demo_catalog(*, facility: Facility, now: dt.datetime | None = None) -> None:
    """Categories, products and the demo facility's stock; grades of the facility with their
    festival limits, and the coming Spring Festival month declared a festival month.

    The facility starts selling each product as any facility does (``prices.start_selling``):
    with its cost, the list price filed as version 1 of its price history, in force from the
    start of the facility-local month of ``now``, before the demo's deposits and orders."""
    now = now or timezone.now()
    month_start = prices.local_midnight(facility.local_month(now), facility.timezone)
    with transaction.atomic():
        categories = {
            code: Category.objects.get_or_create(
                code=code, defaults={"name_zh": zh, "name_en": en, "sort_order": position}
            )[0]
            for position, (code, zh, en) in enumerate(CATEGORIES)
        }
        for sku, category, zh, en, price_fen, most in PRODUCTS:
            product, _ = Product.objects.get_or_create(
                sku=sku,
                defaults={
                    "category": categories[category],
                    "name_zh": zh,
                    "name_en": en,
                    "price_fen": price_fen,
                    "max_per_order": most,
                },
            )
            if not FacilityProduct.objects.filter(facility=facility, product=product).exists():
                prices.start_selling(
                    facility_id=facility.pk,
                    product_id=product.pk,
                    cost_fen=demo_cost_fen(product.price_fen),
                    reason=DEMO_FIRST_PRICE_REASON,
                    stock=DEMO_STOCK,
                    staff_id=None,
                    now=min(month_start, now),
                )
        for name, limit_fen in GRADES:
            grade, _ = Grade.objects.get_or_create(
                facility=facility,
                name=name,
                defaults={"spending_limit_fen": limit_fen, "spending_period": "month"},
            )
            # A demo made before festival limits existed gets them too, unless staff changed
            # the grade's limit since.
            if grade.festival_spending_limit_fen is None and grade.spending_limit_fen == limit_fen:
                grade.festival_spending_limit_fen = FESTIVAL_LIMITS_FEN[name]
                grade.save(update_fields=["festival_spending_limit_fen"])
        month, festival = FESTIVAL_MONTH
        FestivalMonth.objects.get_or_create(
            facility=facility, month=month, defaults={"name": festival}
        )


def grade_demo_inmates(*, facility: Facility) -> int:
    """Give every ungraded inmate of the facility a grade, round-robin by id, in one set-based
    statement (constant memory however many inmates). Returns how many were graded."""
    grade_ids = list(
        Grade.objects.filter(facility=facility, name__in=[name for name, _ in GRADES])
        .order_by("name")
        .values_list("id", flat=True)
    )
    if not grade_ids:
        return 0
    cases = " ".join("WHEN %s THEN %s" for _ in grade_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE facilities_inmate SET grade_id = CASE id %% %s {cases} END "  # noqa: S608
            "WHERE facility_id = %s AND grade_id IS NULL",
            [
                len(grade_ids),
                *[v for slot, grade_id in enumerate(grade_ids) for v in (slot, grade_id)],
                facility.pk,
            ],
        )
        return cursor.rowcount


# Price changes of the demo (SKU, cost, price, reason): two cuts in force at once and a rise
# announced after the facility's notice, so the public price list and the kiosk show both.
DEMO_PRICE_CHANGES = (
    ("FOOD-001", 300, 400, "供应商降价 Supplier price cut"),
    ("DRNK-001", 120, 150, "新供应商 New supplier"),
    ("HYGN-001", 900, 1_300, "进价上涨 Supplier price rise"),
)


def seed_demo_fairness(
    *, facility: Facility, staff_id: int, device_id: int, now: dt.datetime | None = None
) -> None:
    """A few price changes (with costs under a 35% markup cap) and one open dispute about a
    delivered order of the demo's first inmate, so the price list, the markup report and the
    disputes queue have something to show. Idempotent: a second run finds them."""
    demo_reasons = [reason for *_, reason in DEMO_PRICE_CHANGES]
    if not PriceChange.objects.filter(facility=facility, reason__in=demo_reasons).exists():
        if facility.markup_cap_bp is None:
            facility.markup_cap_bp = 4_500
            facility.save(update_fields=["markup_cap_bp"])
        for sku, cost_fen, price_fen, reason in DEMO_PRICE_CHANGES:
            offer = FacilityProduct.objects.filter(facility=facility, product__sku=sku).first()
            if offer is not None:
                prices.file_price_change(
                    facility_product_id=offer.pk,
                    cost_fen=cost_fen,
                    price_fen=price_fen,
                    reason=reason,
                    staff_id=staff_id,
                    now=now,
                )
    if Dispute.objects.filter(facility=facility).exists():
        return
    # A delivered demo order when there is one (its window still open), else one placed here.
    now = now or timezone.now()
    order = (
        Order.objects.filter(
            facility=facility,
            status=Order.Status.DELIVERED,
            delivered_at__gte=now - dt.timedelta(days=facility.dispute_window_days - 1),
            delivered_at__lte=now,
        )
        .order_by("-delivered_at", "-id")
        .first()
    )
    if order is None:
        inmate = facility.inmates.order_by("inmate_number").first()
        soap = Product.objects.filter(sku="HYGN-003").first()
        if inmate is None or soap is None:
            return
        try:
            order = services.place_order(
                inmate_id=inmate.pk,
                device_id=device_id,
                items=[{"product_id": soap.pk, "quantity": 2}],
                idempotency_key="demo-disputed-order",
                now=now,
            )
        except DomainError:  # the demo inmate has no money left: no dispute then
            return
        if order.status == Order.Status.PLACED:
            services.mark_order_picked(order_id=order.pk, staff_id=staff_id, now=now)
            services.mark_order_delivered(order_id=order.pk, staff_id=staff_id, now=now)
    disputes.file_dispute(
        inmate_id=order.inmate_id,
        device_id=device_id,
        order_id=order.pk,
        line_id=order.items.order_by("id").first().pk,
        reason="missing",
        text="少了一件 One item was missing",
        idempotency_key="demo-dispute",
        now=now,
    )


# Demo inmates (the first by number, at each facility) whose purchases are placed as real kiosk
# orders: each order is a call of the service (a few milliseconds), so a demo of a hundred
# thousand inmates still seeds in minutes; the others have deposits only.
DEMO_ORDER_INMATES = 200
DELIVERED_AFTER = dt.timedelta(days=1)  # older demo orders were picked and delivered


def place_demo_orders(
    *,
    facility: Facility,
    device_id: int,
    clerk_id: int,
    now: dt.datetime,
    inmate_limit: int = DEMO_ORDER_INMATES,
) -> int:
    """The demo's purchases as real kiosk orders, through ``services.place_order``: for each of
    the facility's first ``inmate_limit`` inmates with a credited deposit, none, one or two
    orders (chosen from the inmate number, so every run chooses the same), each of one to
    three products the inmate can afford, placed between their last deposit and ``now``.
    Orders older than a day were picked and delivered by the clerk. Idempotent: the keys are
    ``demo-order:<number>:<n>`` in the kiosk's scope, so a second run finds the same orders.
    Returns how many orders exist for them now."""
    offers = list(
        FacilityProduct.objects.filter(
            facility=facility, is_available=True, product__is_active=True
        )
        .select_related("product")
        .order_by("product__sku")
    )
    if not offers:
        return 0
    inmates = (
        Deposit.objects.filter(facility=facility, status=Deposit.Status.CREDITED)
        .values("inmate_id", "inmate__inmate_number")
        .annotate(last_credit=models.Max("resolved_at"))
        .order_by("inmate__inmate_number")[:inmate_limit]
    )
    placed = 0
    for row in inmates:
        number = row["inmate__inmate_number"]
        draw = hashlib.sha256(f"demo-order:{facility.code}:{number}".encode()).digest()
        count = draw[0] % 3  # 0, 1 or 2 orders
        spendable_fen = (
            Account.objects.filter(inmate_id=row["inmate_id"], kind=Account.Kind.SPENDABLE)
            .values_list("balance_fen", flat=True)
            .first()
            or 0
        )
        for sequence in range(1, count + 1):
            key = f"demo-order:{number}:{sequence}"
            existing = Order.objects.filter(
                idempotency_scope=kiosk_scope(device_id), idempotency_key=key
            ).first()
            if existing is not None:
                placed += 1
                continue
            items, total_fen = [], 0
            for pick in range(1 + draw[1 + sequence] % 3):
                offer = offers[draw[4 + 3 * sequence + pick] % len(offers)]
                quantity = 1 + draw[12 + pick] % min(2, offer.product.max_per_order)
                line_fen = offer.product.price_fen * quantity
                if offer.product_id in {item["product_id"] for item in items}:
                    continue
                if total_fen + line_fen > spendable_fen:
                    break
                items.append({"product_id": offer.product_id, "quantity": quantity})
                total_fen += line_fen
            if not items:
                break
            at = row["last_credit"] + (now - row["last_credit"]) * sequence / (count + 1)
            try:
                order = services.place_order(
                    inmate_id=row["inmate_id"],
                    device_id=device_id,
                    items=items,
                    idempotency_key=key,
                    now=at,
                )
            except DomainError:
                continue  # refused (a spending limit): kept as the inmate's refused attempt
            spendable_fen -= total_fen
            placed += 1
            if now - at > DELIVERED_AFTER:
                services.mark_order_picked(
                    order_id=order.pk, staff_id=clerk_id, now=at + dt.timedelta(hours=2)
                )
                services.mark_order_delivered(
                    order_id=order.pk, staff_id=clerk_id, now=at + dt.timedelta(hours=4)
                )
    return placed
