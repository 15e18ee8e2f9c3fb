"""The public price list of a facility: signed out, in Chinese and English, the price in force
with its last change and an announced rise, each product's history, the same as CSV (UTF-8
with a BOM, no cell a spreadsheet would run); never stock, sales or inmates; off when the
facility turns it off; the same security headers as every page."""

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from catalog.models import Category, FacilityProduct
from catalog.services import prices
from facilities import services as facility_services
from facilities.models import local_date
from tests.catalog.helpers import funded, order_from_kiosk, product_at
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    facility = FacilityFactory(code="north", name="North Prison", price_rise_notice_days=7)
    other = FacilityFactory(code="south")
    drinks = Category.objects.create(code="drinks", name_zh="饮料", name_en="Drinks")
    tea = product_at(
        facility,
        price_fen=350,
        stock=4_321,
        name_zh="绿茶",
        name_en="Green tea",
        unit_zh="瓶",
        unit_en="bottle",
        category=drinks,
    )
    noodles = product_at(facility, price_fen=450, stock=777, name_zh="方便面", name_en="Noodles")
    evil = product_at(facility, price_fen=100, name_zh="=HYPERLINK(1)", name_en="=HYPERLINK(1)")
    product_at(other, price_fen=999, name_en="Southern soap")
    hidden = product_at(facility, name_en="Withdrawn item")
    FacilityProduct.objects.filter(product=hidden).update(is_available=False)
    staff = StaffFactory()
    offer = FacilityProduct.objects.get(product=tea)
    prices.file_price_change(
        facility_product_id=offer.pk,
        cost_fen=200,
        price_fen=300,
        reason="Cheaper supplier",
        staff_id=staff.pk,
    )
    prices.file_price_change(
        facility_product_id=offer.pk,
        cost_fen=200,
        price_fen=380,
        reason="Secret supplier note",
        staff_id=staff.pk,
    )
    inmate = funded(InmateFactory(facility=facility, surname="Zhangsan"), 50_000)
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    order_from_kiosk(inmate, device, noodles, "sold-1", quantity=3)
    return facility, tea, noodles, evil, inmate


def test_the_list_shows_products_prices_units_and_changes_signed_out(client, shop):
    facility, tea, noodles, _, _ = shop
    answer = client.get("/prices/north/", HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 200
    page = answer.content.decode()
    today = local_date(timezone.now(), facility.timezone)
    rise_on = today + dt.timedelta(days=7)
    assert "Green tea" in page and "bottle" in page and "Drinks" in page
    assert "¥3.00" in page  # the cut, in force at once
    assert f"¥3.80 from {rise_on.isoformat()}" in page  # the announced rise
    assert today.isoformat() in page  # the last change
    assert "Noodles" in page and "¥4.50" in page
    assert "Southern soap" not in page and "Withdrawn item" not in page
    chinese = client.get("/prices/north/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "绿茶" in chinese and "瓶" in chinese and "饮料" in chinese and "价格" in chinese


def test_the_page_never_shows_stock_sales_inmates_or_costs(client, shop):
    _, tea, _, _, inmate = shop
    pages = [
        client.get("/prices/north/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        for language in ("en", "zh-hans")
    ]
    pages.append(client.get(f"/prices/north/{tea.sku}/").content.decode())
    pages.append(client.get("/prices/north/", {"format": "csv"}).content.decode("utf-8-sig"))
    for page in pages:
        for secret in ("4321", "4,321", "777", "Zhangsan", inmate.inmate_number, "Secret"):
            assert secret not in page
        for word in ("stock", "Stock", "库存", "sold", "销量", "¥2.00"):
            assert word not in page


def test_each_product_has_its_price_history(client, shop):
    _, tea, _, _, _ = shop
    answer = client.get(f"/prices/north/{tea.sku}/", HTTP_ACCEPT_LANGUAGE="en")
    page = answer.content.decode()
    assert answer.status_code == 200
    assert page.count("<tr class=") == 2  # the cut and the announced rise
    assert "¥3.80" in page and "¥3.00" in page and "¥3.50" in page and "announced" in page
    assert client.get("/prices/north/NO-SUCH-SKU/").status_code == 404


def test_the_csv_is_utf8_with_a_bom_and_no_formula_cells(client, shop):
    answer = client.get("/prices/north/", {"format": "csv"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    names = [row[2] for row in rows[1:]]
    assert "绿茶" in names and "'=HYPERLINK(1)" in names and "=HYPERLINK(1)" not in names
    tea = next(row for row in rows if row[2] == "绿茶")
    assert tea[3:6] == ["瓶", "3.00", "CNY"] and tea[7] == "3.80"


def test_a_facility_can_turn_its_list_off(client, shop):
    facility, tea, _, _, _ = shop
    facility.publishes_prices = False
    facility.save(update_fields=["publishes_prices"])
    assert client.get("/prices/north/").status_code == 404
    assert client.get(f"/prices/north/{tea.sku}/").status_code == 404
    assert client.get("/prices/north/", {"format": "csv"}).status_code == 404
    assert client.get("/prices/no-such-prison/").status_code == 404


def test_the_price_list_sends_the_same_security_headers_as_every_page(client, shop):
    page = client.get("/prices/north/")
    home = client.get("/")
    for header in (
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
        "X-Frame-Options",
    ):
        assert page.has_header(header), header
        assert page[header] == home[header], header
    assert "unsafe-inline" not in page["Content-Security-Policy"]
    body = page.content.decode()
    assert "<script" not in body and "<style" not in body and " style=" not in body


@pytest.mark.parametrize("page_name", ["list", "history"])
def test_the_price_pages_wear_the_family_sites_page_with_the_facilitys_name(
    client, shop, page_name
):
    tea = FacilityProduct.objects.get(product__name_en="Green tea").product
    path = "/prices/north/" if page_name == "list" else f"/prices/north/{tea.sku}/"
    answer = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 200
    used = [template.name for template in answer.templates]
    assert "family/base.html" in used and "catalog/prices/base.html" in used
    page = answer.content.decode()
    # One header (brand and language switch) and one footer, from the family base.
    assert page.count('<header class="site">') == 1 and page.count('<footer class="site">') == 1
    assert page.count('id="language-select"') == 1
    assert "North Prison · Commissary prices" in page
    assert " · North Prison</title>" in page
    assert "A price rise is announced here before it takes effect." in page
    assert "catalog/prices.css" in page and "family/site.css" not in page
    # Read signed out by anyone: no family menu, no family footer, no sign-in links.
    assert "/accounts/login/" not in page and 'class="main"' not in page
    assert "Keep your receipt." not in page
