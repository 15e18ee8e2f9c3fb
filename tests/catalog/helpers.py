"""Catalog scenario helpers: products on sale at a facility, graded inmates with money."""

import itertools

from catalog.models import Category, FacilityProduct, Product
from facilities.models import Grade
from tests.ledger.helpers import deposit

_skus = itertools.count()


def product_at(facility, *, price_fen=500, stock=100, max_per_order=10, category=None, **fields):
    """A product on sale at ``facility`` with ``stock`` units."""
    number = next(_skus)
    category = (
        category
        or Category.objects.get_or_create(
            code="food", defaults={"name_zh": "食品", "name_en": "Food"}
        )[0]
    )
    product = Product.objects.create(
        **{
            "sku": f"SKU-{number:05d}",
            "name_zh": f"商品{number}",
            "name_en": f"Product {number}",
            "category": category,
            "price_fen": price_fen,
            "max_per_order": max_per_order,
            **fields,
        },
    )
    FacilityProduct.objects.create(facility=facility, product=product, stock=stock)
    return product


def stock_of(product, facility) -> int:
    return FacilityProduct.objects.get(product=product, facility=facility).stock


def grade_at(facility, *, limit_fen, period="month", name=None, festival_limit_fen=None):
    return Grade.objects.create(
        facility=facility,
        name=name or f"Grade {next(_skus)}",
        spending_limit_fen=limit_fen,
        spending_period=period,
        festival_spending_limit_fen=festival_limit_fen,
    )


def funded(inmate, amount_fen):
    """Give the inmate spendable money through a real deposit."""
    deposit(inmate, amount_fen)
    return inmate


def order_from_kiosk(inmate, device, product, key, quantity=1, now=None):
    """Place an order of one product through the service, as the kiosk API does."""
    from catalog import services

    return services.place_order(
        inmate_id=inmate.pk,
        device_id=device.pk,
        items=[{"product_id": product.pk, "quantity": quantity}],
        idempotency_key=key,
        now=now,
    )


def unfunded_shop(facility=None):
    """An inmate with no money, a kiosk and a product of 10 yuan at one facility: every order
    is refused for insufficient funds. Returns (inmate, device, product)."""
    from facilities import services as facility_services
    from tests.factories import FacilityFactory, InmateFactory

    facility = facility or FacilityFactory()
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    inmate = facility.inmates.first() or InmateFactory(facility=facility)
    return inmate, device, product_at(facility, price_fen=1_000)
