"""A facility that starts selling a product that already exists (a new stock entry, or a new
row of the product's facilities on its change page) gives the cost, is refused over its markup
cap with nothing changed, and files version 1 of its own price history (who, when, reason),
which its orders link to and its public price list shows. A clerk may start only the
facilities they manage selling."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import FacilityProduct, PriceChange, Product
from catalog.services import prices
from commissary import errors
from facilities import services as facility_services
from facilities.models import local_date
from tests.admin.conftest import make_site
from tests.catalog.helpers import funded, order_from_kiosk, product_at
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def shops():
    """Soap sold at ¥13.51 (its list price) at a first facility; a second one, capped at 35%
    over cost, that does not sell it yet."""
    first = FacilityFactory(code="first")
    product = product_at(first, price_fen=1_351, name_zh="肥皂", name_en="Soap")
    capped = FacilityFactory(code="capped", markup_cap_bp=3_500, price_rise_notice_days=7)
    return product, first, capped


def _version_one(product, facility):
    return PriceChange.objects.get(facility=facility, facility_product__product=product)


def _ordered_at(facility, product):
    """An order of the product placed at the facility's kiosk now; its one line."""
    inmate = funded(InmateFactory(facility=facility), 10_000)
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    return order_from_kiosk(inmate, device, product, f"after-{facility.pk}").items.get()


def _nothing_sold_at(product, facility):
    assert not FacilityProduct.objects.filter(product=product, facility=facility).exists()
    assert not PriceChange.objects.filter(facility=facility).exists()


# The stock admin: a new entry.


def _stock_entry(product, facility, **changes):
    return {
        "facility": facility.pk,
        "product": product.pk,
        "is_available": "on",
        "stock": "20",
        "cost": "10.00",
        "price": "",
        "reason": "",
        **changes,
    }


def test_a_new_stock_entry_at_the_list_price_is_refused_one_fen_over_the_cap(client, shops):
    product, _first, capped = shops
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:catalog_facilityproduct_add")
    refused = client.post(url, _stock_entry(product, capped), **EN)
    assert refused.status_code == 200
    text = refused.content.decode()
    assert "more than 35% over the cost of ¥10.00" in text and "at most ¥13.50" in text
    _nothing_sold_at(product, capped)
    # In Chinese, the same refusal in Chinese.
    chinese = client.post(url, _stock_entry(product, capped), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "加价上限" in chinese.content.decode()
    _nothing_sold_at(product, capped)


def test_a_new_stock_entry_at_the_cap_is_the_first_version_of_the_history(client, shops):
    product, _first, capped = shops
    clerk = StaffFactory(is_superuser=True)
    client.force_login(clerk)
    url = reverse("admin:catalog_facilityproduct_add")
    over = client.post(url, _stock_entry(product, capped, price="13.51"), **EN)
    assert over.status_code == 200 and "at most ¥13.50" in over.content.decode()
    _nothing_sold_at(product, capped)
    before = timezone.now()
    answer = client.post(
        url, _stock_entry(product, capped, price="13.50", reason="New supplier"), **EN
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    offer = FacilityProduct.objects.get(product=product, facility=capped)
    assert (offer.stock, offer.is_available) == (20, True)
    first = _version_one(product, capped)
    assert (first.facility_product, first.cost_fen, first.price_fen) == (offer, 1_000, 1_350)
    assert first.previous_price_fen == 1_350  # nothing was sold here before
    assert (first.reason, first.created_by) == ("New supplier", clerk)
    assert before <= first.created_at == first.effective_from <= timezone.now()
    # In force at once, though a rise elsewhere waits 7 days: nothing was sold here before.
    assert prices.price_in_force(facility_product=offer, at=timezone.now()) == (1_350, first.pk)
    line = _ordered_at(capped, product)
    assert (line.unit_price_fen, line.price_change_id) == (1_350, first.pk)


def test_a_new_stock_entry_needs_the_cost(client, shops):
    product, _first, capped = shops
    client.force_login(StaffFactory(is_superuser=True))
    answer = client.post(
        reverse("admin:catalog_facilityproduct_add"),
        _stock_entry(product, capped, cost="", price="13.00"),
        **EN,
    )
    assert answer.status_code == 200
    assert "needs the product&#x27;s cost" in answer.content.decode()
    _nothing_sold_at(product, capped)


def test_a_new_stock_entry_without_a_price_sells_at_the_list_price_with_a_default_reason(
    client, shops
):
    product, first, _capped = shops
    free = FacilityFactory(code="free")
    client.force_login(StaffFactory(is_superuser=True))
    answer = client.post(
        reverse("admin:catalog_facilityproduct_add"), _stock_entry(product, free, cost="1.00")
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    version = _version_one(product, free)
    assert (version.cost_fen, version.price_fen, version.reason) == (
        100,
        1_351,
        "First price at this facility",
    )
    assert _ordered_at(free, product).price_change_id == version.pk
    # The first facility, which sold it before, is left alone.
    assert not PriceChange.objects.filter(facility=first).exists()


def test_a_clerk_cannot_start_a_facility_they_do_not_manage_selling(client):
    alpha, bravo = make_site("alpha"), make_site("bravo")
    product = product_at(alpha.facility, price_fen=1_200)
    client.force_login(alpha.staff["clerk"])
    url = reverse("admin:catalog_facilityproduct_add")
    refused = client.post(url, _stock_entry(product, bravo.facility), **EN)
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()
    _nothing_sold_at(product, bravo.facility)
    # The clerk of the facility may.
    client.force_login(bravo.staff["clerk"])
    assert client.post(url, _stock_entry(product, bravo.facility)).status_code == 302
    assert _version_one(product, bravo.facility).created_by == bravo.staff["clerk"]


def test_an_existing_stock_entry_keeps_its_facility_product_and_history(client, shops):
    product, first, capped = shops
    offer = FacilityProduct.objects.get(product=product, facility=first)
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:catalog_facilityproduct_change", args=[offer.pk])
    page = client.get(url, **EN).content.decode()
    assert 'name="cost"' not in page and 'name="facility"' not in page
    answer = client.post(
        url, {"facility": capped.pk, "product": product.pk, "is_available": "on", "stock": "7"}
    )
    assert answer.status_code == 302
    offer.refresh_from_db()
    assert (offer.facility, offer.stock) == (first, 7)
    assert not PriceChange.objects.exists()


# The product's change page: a new row of its facilities.


def _product_page(product, rows, **changes):
    fields = {
        "sku": product.sku,
        "name_zh": product.name_zh,
        "name_en": product.name_en,
        "category": product.category_id,
        "price": f"{product.price_fen / 100:.2f}",
        "is_active": "on",
        "max_per_order": "10",
        "offers-TOTAL_FORMS": str(len(rows)),
        "offers-INITIAL_FORMS": "0",
    }
    for number, row in enumerate(rows):
        fields |= {f"offers-{number}-{name}": value for name, value in row.items()}
    return {**fields, **changes}


def _new_row(facility, **changes):
    return {
        "facility": facility.pk,
        "is_available": "on",
        "stock": "5",
        "cost": "10.00",
        **changes,
    }


def test_the_product_page_asks_a_new_row_for_its_cost(client, shops):
    product, _first, capped = shops
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:catalog_product_change", args=[product.pk])
    page = client.get(url, **EN).content.decode()
    assert 'name="offers-__prefix__-cost"' in page  # the row "Add another" copies
    # The row already there shows the field, but its first price is filed: not to be typed.
    existing = re.search(r'<input[^>]*name="offers-0-cost"[^>]*>', page)
    assert existing is not None and "disabled" in existing.group(0)
    missing = client.post(url, _product_page(product, [_new_row(capped, cost="")]), **EN)
    assert missing.status_code == 200
    assert "needs the product&#x27;s cost" in missing.content.decode()
    _nothing_sold_at(product, capped)


def test_a_new_row_on_the_product_page_is_refused_one_fen_over_the_cap(client, shops):
    product, _first, capped = shops
    editor = StaffFactory(is_superuser=True)
    client.force_login(editor)
    url = reverse("admin:catalog_product_change", args=[product.pk])
    refused = client.post(url, _product_page(product, [_new_row(capped)]), **EN)
    assert refused.status_code == 200
    assert "at most ¥13.50" in refused.content.decode()
    _nothing_sold_at(product, capped)
    over = client.post(url, _product_page(product, [_new_row(capped, price="13.51")]), **EN)
    assert over.status_code == 200 and "at most ¥13.50" in over.content.decode()
    _nothing_sold_at(product, capped)
    accepted = client.post(
        url, _product_page(product, [_new_row(capped, price="13.50", reason="Opening")])
    )
    assert accepted.status_code == 302, accepted.content.decode()[:3000]
    first = _version_one(product, capped)
    assert (first.cost_fen, first.price_fen, first.reason, first.created_by) == (
        1_000,
        1_350,
        "Opening",
        editor,
    )
    assert FacilityProduct.objects.get(product=product, facility=capped).stock == 5
    line = _ordered_at(capped, product)
    assert (line.unit_price_fen, line.price_change_id) == (1_350, first.pk)


def test_a_new_row_takes_the_list_price_changed_on_the_same_page(client, shops):
    product, first, capped = shops
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:catalog_product_change", args=[product.pk])
    fields = _product_page(
        product, [_new_row(capped)], price="13.50", cost="10.00", reason="Supplier price"
    )
    answer = client.post(url, fields)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert Product.objects.get(pk=product.pk).price_fen == 1_350
    assert _version_one(product, capped).price_fen == 1_350
    assert PriceChange.objects.get(facility=first).price_fen == 1_350


def test_a_clerk_cannot_add_a_facility_they_do_not_manage_on_the_product_page(client):
    alpha, bravo = make_site("alpha"), make_site("bravo")
    product = product_at(alpha.facility, price_fen=1_200)
    client.force_login(alpha.staff["clerk"])
    url = reverse("admin:catalog_product_change", args=[product.pk])
    refused = client.post(url, _product_page(product, [_new_row(bravo.facility)]), **EN)
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()
    _nothing_sold_at(product, bravo.facility)


# The service, and the public price list.


def test_the_service_refuses_over_the_cap_and_a_second_offer(shops):
    product, first, capped = shops
    with pytest.raises(errors.MarkupCapExceeded):
        prices.start_selling(
            facility_id=capped.pk, product_id=product.pk, cost_fen=1_000, staff_id=None
        )
    _nothing_sold_at(product, capped)
    with pytest.raises(errors.ValidationFailed):
        prices.start_selling(
            facility_id=first.pk, product_id=product.pk, cost_fen=1_000, staff_id=None
        )
    offer = prices.start_selling(
        facility_id=capped.pk, product_id=product.pk, cost_fen=1_001, staff_id=None
    )
    assert prices.price_in_force(facility_product=offer, at=timezone.now())[0] == 1_351


def test_the_public_price_list_shows_the_first_price_and_its_history(client, shops):
    product, _first, capped = shops
    prices.start_selling(
        facility_id=capped.pk,
        product_id=product.pk,
        cost_fen=1_000,
        price_fen=1_300,
        staff_id=None,
        reason="Supplier note, not public",
    )
    listing = client.get("/prices/capped/", **EN).content.decode()
    assert "Soap" in listing and "¥13.00" in listing and "¥13.51" not in listing
    today = local_date(timezone.now(), capped.timezone).isoformat()
    assert today in listing  # the last change: the first price, today
    history = client.get(f"/prices/capped/{product.sku}/", **EN).content.decode()
    assert history.count('<tr class="down">') == 1 and "¥13.00" in history
    assert "¥10.00" not in history and "not public" not in history  # no cost, no reason
