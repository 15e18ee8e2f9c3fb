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
