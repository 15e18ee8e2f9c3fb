"""A product's list price changed in the admin is a price change, not a bare field edit: it
needs the cost and a reason, is refused over a facility's markup cap (nothing changes then),
and is filed in the price history of every facility selling the product at its list price, a
rise only after the facility's notice. Facilities with prices of their own keep them."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import FacilityProduct, PriceChange, Product
from catalog.services import prices
from commissary import errors
from tests.admin.conftest import make_site
from tests.catalog.helpers import product_at
from tests.factories import FacilityFactory, StaffFactory

pytestmark = pytest.mark.django_db


def _fields(product, **changes):
    return {
        "sku": product.sku,
        "name_zh": product.name_zh,
        "name_en": product.name_en,
        "category": product.category_id,
        "is_active": "on",
        "max_per_order": "10",
        "offers-TOTAL_FORMS": "0",  # the stock inline, left as it is
        "offers-INITIAL_FORMS": "0",
        **changes,
    }


def _offer(product, facility):
    return FacilityProduct.objects.get(product=product, facility=facility)


def _in_force(product, facility, at=None):
    return prices.price_in_force(
        facility_product=_offer(product, facility), at=at or timezone.now()
    )[0]


@pytest.fixture
def soap():
    """Sold at ¥12.00 (its list price) at two facilities without notice, and at a third that
    filed a price of its own."""
    first = FacilityFactory(price_rise_notice_days=0)
    product = product_at(first, price_fen=1_200)
    second, own = FacilityFactory(price_rise_notice_days=0), FacilityFactory()
    for facility in (second, own):
        FacilityProduct.objects.create(facility=facility, product=product, stock=5)
    prices.file_price_change(
        facility_product_id=_offer(product, own).pk,
        cost_fen=900,
        price_fen=1_150,
        reason="Our own price",
        staff_id=None,
    )
    return product, first, second, own


def test_a_new_list_price_is_filed_in_each_facility_s_price_history(client, soap):
    product, first, second, own = soap
    url = reverse("admin:catalog_product_change", args=[product.pk])
    editor = StaffFactory(is_superuser=True)
    client.force_login(editor)
    answer = client.post(
        url, _fields(product, price="11.00", cost="9.00", reason="Supplier cut its price")
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    product.refresh_from_db()
    assert product.price_fen == 1_100
    filed = PriceChange.objects.filter(reason="Supplier cut its price")
    assert {change.facility_id for change in filed} == {first.pk, second.pk}
    for change in filed:
        assert (change.previous_price_fen, change.price_fen, change.cost_fen) == (1_200, 1_100, 900)
        assert change.created_by == editor
    assert (_in_force(product, first), _in_force(product, second)) == (1_100, 1_100)
    assert _in_force(product, own) == 1_150  # its own price is left alone


def test_without_cost_and_reason_the_list_price_is_not_changed(client, soap):
    product, *_ = soap
    url = reverse("admin:catalog_product_change", args=[product.pk])
    client.force_login(StaffFactory(is_superuser=True))
    answer = client.post(url, _fields(product, price="11.00"), HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 200
    assert "it needs the cost and a reason" in answer.content.decode()
    product.refresh_from_db()
    assert product.price_fen == 1_200
    assert PriceChange.objects.count() == 1


def test_other_fields_change_without_a_price_change(client, soap):
    product, *_ = soap
    url = reverse("admin:catalog_product_change", args=[product.pk])
    client.force_login(StaffFactory(is_superuser=True))
    answer = client.post(url, _fields(product, price="12.00", name_en="Soap, large"))
    assert answer.status_code == 302
    product.refresh_from_db()
    assert (product.name_en, product.price_fen) == ("Soap, large", 1_200)
    assert PriceChange.objects.count() == 1


def test_the_markup_cap_refuses_the_new_list_price_and_nothing_changes(client, soap):
    product, first, second, _own = soap
    second.markup_cap_bp = 3_500
    second.save(update_fields=["markup_cap_bp"])
    url = reverse("admin:catalog_product_change", args=[product.pk])
    client.force_login(StaffFactory(is_superuser=True))
    fields = _fields(product, cost="10.00", reason="Supplier price")
    refused = client.post(url, {**fields, "price": "13.51"}, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200
    assert "35%" in refused.content.decode()
    product.refresh_from_db()
    assert product.price_fen == 1_200
    assert PriceChange.objects.count() == 1
    assert client.post(url, {**fields, "price": "13.50"}).status_code == 302  # the boundary
    assert _in_force(product, second) == 1_350


def test_the_service_is_all_or_nothing_when_one_facility_refuses(soap):
    product, first, second, _own = soap
    second.markup_cap_bp = 0
    second.save(update_fields=["markup_cap_bp"])
    with pytest.raises(errors.MarkupCapExceeded):
        prices.change_list_price(
            product_id=product.pk, cost_fen=1_000, price_fen=1_100, reason="x", staff_id=None
        )
    product.refresh_from_db()
    assert product.price_fen == 1_200
    assert not PriceChange.objects.filter(facility=first).exists()


def test_a_list_price_rise_waits_for_each_facility_s_notice(soap):
    product, first, second, _own = soap
    second.price_rise_notice_days = 3
    second.save(update_fields=["price_rise_notice_days"])
    now = timezone.now()
    prices.change_list_price(
        product_id=product.pk,
        cost_fen=1_000,
        price_fen=1_300,
        reason="Supplier price",
        staff_id=None,
        now=now,
    )
    assert Product.objects.get(pk=product.pk).price_fen == 1_300
    assert _in_force(product, first, now) == 1_300  # no notice there: at once
    # With notice, the old price stays in force (filed as the facility's own) until the date.
    assert _in_force(product, second, now + dt.timedelta(days=2)) == 1_200
    assert _in_force(product, second, now + dt.timedelta(days=4)) == 1_300
    history = list(
        PriceChange.objects.filter(facility=second)
        .order_by("id")
        .values_list("previous_price_fen", "price_fen", "reason")
    )
    assert history == [(1_200, 1_200, "Supplier price"), (1_200, 1_300, "Supplier price")]


def test_a_clerk_cannot_reprice_another_facility_s_list_price(client):
    a, b = make_site("alpha"), make_site("bravo")
    shared = product_at(a.facility, price_fen=1_200)
    FacilityProduct.objects.create(facility=b.facility, product=shared, stock=5)
    own = product_at(a.facility, price_fen=800)
    client.force_login(a.staff["clerk"])
    fields = {"cost": "5.00", "reason": "Supplier price", "price": "7.00"}
    refused = client.post(
        reverse("admin:catalog_product_change", args=[shared.pk]),
        _fields(shared, **fields),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert refused.status_code == 200
    assert "Facilities you do not manage" in refused.content.decode()
    assert Product.objects.get(pk=shared.pk).price_fen == 1_200
    accepted = client.post(
        reverse("admin:catalog_product_change", args=[own.pk]), _fields(own, **fields)
    )
    assert accepted.status_code == 302
    assert _in_force(own, a.facility) == 700


def _new_product(category, facilities, **changes):
    fields = {
        "sku": "NEW-1",
        "name_zh": "新肥皂",
        "name_en": "New soap",
        "category": category.pk,
        "price": "13.51",
        "cost": "10.00",
        "is_active": "on",
        "max_per_order": "5",
        "offers-TOTAL_FORMS": str(len(facilities)),
        "offers-INITIAL_FORMS": "0",
    }
    for number, facility in enumerate(facilities):
        fields |= {
            f"offers-{number}-facility": facility.pk,
            f"offers-{number}-is_available": "on",
            f"offers-{number}-stock": "5",
        }
    return {**fields, **changes}


@pytest.fixture
def capped():
    """A facility without a markup cap and one capped at 35%; a category to add products to."""
    free, capped = FacilityFactory(), FacilityFactory(markup_cap_bp=3_500)
    category = product_at(free).category
    return category, free, capped


def test_a_new_product_s_price_needs_its_cost(client, capped):
    category, free, _capped = capped
    client.force_login(StaffFactory(is_superuser=True))
    answer = client.post(
        reverse("admin:catalog_product_add"),
        _new_product(category, [free], cost=""),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert answer.status_code == 200
    assert "A new product&#x27;s price needs its cost." in answer.content.decode()
    assert not Product.objects.filter(sku="NEW-1").exists()


def test_a_new_product_s_price_is_refused_over_an_offering_facility_s_markup_cap(client, capped):
    category, free, capped = capped
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:catalog_product_add")
    refused = client.post(url, _new_product(category, [free, capped]), HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200
    assert "35%" in refused.content.decode()
    assert not Product.objects.filter(sku="NEW-1").exists()
    assert not PriceChange.objects.exists()
    # Where it is not offered, the cap does not apply; at the boundary it is accepted.
    assert client.post(url, _new_product(category, [free])).status_code == 302
    accepted = client.post(url, _new_product(category, [capped], sku="NEW-2", price="13.50"))
    assert accepted.status_code == 302, accepted.content.decode()[:3000]


def test_a_new_product_s_price_is_the_first_version_of_each_facility_s_history(client, capped):
    category, free, capped = capped
    editor = StaffFactory(is_superuser=True)
    client.force_login(editor)
    answer = client.post(
        reverse("admin:catalog_product_add"),
        _new_product(category, [free, capped], price="13.00", reason="Opening price"),
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    product = Product.objects.get(sku="NEW-1")
    assert product.price_fen == 1_300
    history = PriceChange.objects.filter(facility_product__product=product).order_by("facility")
    assert [
        (c.facility_id, c.cost_fen, c.previous_price_fen, c.price_fen, c.reason, c.created_by)
        for c in history
    ] == [
        (free.pk, 1_000, 1_300, 1_300, "Opening price", editor),
        (capped.pk, 1_000, 1_300, 1_300, "Opening price", editor),
    ]
    assert (_in_force(product, free), _in_force(product, capped)) == (1_300, 1_300)
    assert (
        prices.price_in_force(facility_product=_offer(product, capped), at=timezone.now())[1]
        == history.get(facility=capped).pk
    )  # orders link to this version


def test_a_new_product_without_a_reason_files_a_default_one(client, capped):
    category, free, _capped = capped
    client.force_login(StaffFactory(is_superuser=True))
    answer = client.post(reverse("admin:catalog_product_add"), _new_product(category, [free]))
    assert answer.status_code == 302
    assert PriceChange.objects.get().reason == "First price of a new product"


def test_a_reader_who_may_only_view_a_product_sees_no_empty_cost_and_reason(client):
    site = make_site("alpha")
    product = product_at(site.facility, price_fen=1_200)
    client.force_login(site.staff["auditor"])
    page = client.get(reverse("admin:catalog_product_change", args=[product.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Reason for the price change" not in text and "价格变更原因" not in text
    assert ">None<" not in text
