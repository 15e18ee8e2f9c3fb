"""The kiosk catalog shows the price in force and a rise already announced ("price from
<date>"), an additive field; an order pays the price in force."""

import datetime as dt

import pytest
from django.utils import timezone

from catalog.models import FacilityProduct
from catalog.services import prices
from facilities.models import local_date
from tests.catalog.helpers import funded, product_at
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def test_the_catalog_shows_a_cut_at_once_and_an_announced_rise_with_its_date(
    signed_in, facility, inmate
):
    cut_product, rise_product = product_at(facility, price_fen=1_000), product_at(facility)
    staff_id = StaffFactory().pk
    for product, price_fen in ((cut_product, 800), (rise_product, 650)):
        prices.file_price_change(
            facility_product_id=FacilityProduct.objects.get(product=product).pk,
            cost_fen=400,
            price_fen=price_fen,
            reason="Supplier",
            staff_id=staff_id,
        )
    listed = {row["id"]: row for row in signed_in.get("catalog").json()["results"]}
    rise_on = local_date(timezone.now(), facility.timezone) + dt.timedelta(
        days=facility.price_rise_notice_days
    )
    assert (listed[cut_product.pk]["price"], listed[cut_product.pk]["next_price"]) == (800, None)
    assert listed[rise_product.pk]["price"] == 500
    assert listed[rise_product.pk]["next_price"] == {
        "price": 650,
        "effective_on": rise_on.isoformat(),
    }
    funded(inmate, 10_000)
    placed = signed_in.order([{"product_id": cut_product.pk, "quantity": 2}], key="cut-1")
    assert placed.status_code == 201 and placed.json()["total"] == 1_600
