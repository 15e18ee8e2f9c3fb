"""Staff change prices by filing a price change with a reason, for their own facilities only;
the markup cap's refusal is shown on the form; the markup report lists their products."""

import pytest
from django.urls import reverse

from catalog.models import FacilityProduct, PriceChange
from tests.admin.conftest import make_site
from tests.catalog.helpers import product_at

pytestmark = pytest.mark.django_db
ADD = reverse("admin:catalog_pricechange_add")


@pytest.fixture
def sites():
    a, b = make_site("alpha"), make_site("bravo")
    a.facility.markup_cap_bp = 3_500
    a.facility.save(update_fields=["markup_cap_bp"])
    for site in (a, b):
        product = product_at(site.facility, price_fen=1_200, name_en=f"Soap {site.facility.code}")
        site.offer = FacilityProduct.objects.get(product=product)
    return a, b


def _file(client, offer, *, cost="10.00", price="11.00", reason="Supplier price"):
    return client.post(
        ADD, {"facility_product": offer.pk, "cost": cost, "price": price, "reason": reason}
    )


def test_a_clerk_files_a_price_cut_with_a_reason(client, sites):
    a, _ = sites
    client.force_login(a.staff["clerk"])
    answer = _file(client, a.offer)
    assert answer.status_code == 302
    change = PriceChange.objects.get()
    assert (change.price_fen, change.cost_fen, change.previous_price_fen) == (1_100, 1_000, 1_200)
    assert change.created_by == a.staff["clerk"] and change.reason == "Supplier price"
    listing = client.get(reverse("admin:catalog_pricechange_changelist")).content.decode()
    assert "Supplier price" in listing


def test_the_markup_cap_refusal_is_shown_on_the_form_and_files_nothing(client, sites):
    a, _ = sites
    client.force_login(a.staff["clerk"])
    answer = _file(client, a.offer, cost="10.00", price="13.51")
    assert answer.status_code == 200
    assert "35%" in answer.content.decode()
    assert not PriceChange.objects.exists()


def test_another_facility_s_product_cannot_be_priced_or_seen(client, sites):
    a, b = sites
    client.force_login(a.staff["clerk"])
    form = client.get(ADD).content.decode()
    assert f'value="{a.offer.pk}"' in form and f'value="{b.offer.pk}"' not in form
    answer = _file(client, b.offer)
    assert answer.status_code == 200 and not PriceChange.objects.exists()
    report = client.get(reverse("admin:catalog_pricechange_markup")).content.decode()
    assert "Soap alpha" in report and "Soap bravo" not in report


def test_the_history_cannot_be_edited_or_deleted_in_the_admin(client, sites):
    a, _ = sites
    client.force_login(a.staff["clerk"])
    _file(client, a.offer)
    change = PriceChange.objects.get()
    page = client.get(reverse("admin:catalog_pricechange_change", args=[change.pk]))
    assert page.status_code == 200 and 'name="reason"' not in page.content.decode()
    delete = client.post(reverse("admin:catalog_pricechange_delete", args=[change.pk]))
    assert delete.status_code == 403
    assert PriceChange.objects.filter(pk=change.pk).exists()


def test_the_markup_report_lists_the_highest_markup_first(client, sites):
    a, _ = sites
    second = FacilityProduct.objects.get(
        product=product_at(a.facility, price_fen=500, name_en="Tea")
    )
    client.force_login(a.staff["clerk"])
    _file(client, a.offer, cost="10.00", price="11.00")  # 10%
    _file(client, second, cost="2.00", price="2.50")  # 25%
    report = client.get(reverse("admin:catalog_pricechange_markup")).content.decode()
    assert report.index("Tea") < report.index("Soap alpha")
    assert "25.00%" in report and "10.00%" in report
