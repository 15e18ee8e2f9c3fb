"""``seed_demo`` leaves a shop a kiosk can use at once: products in stock at the demo
facility, every demo inmate graded, and the credentials file's inmates can sign in and buy."""

import json
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db.models import F
from rest_framework.test import APIClient

from catalog.demo import FESTIVAL_LIMITS_FEN, FESTIVAL_MONTH, GRADES, PRODUCTS
from catalog.models import FacilityProduct, Order
from facilities.models import Facility, Inmate

pytestmark = pytest.mark.django_db


def test_seed_demo_stocks_the_catalog_grades_inmates_and_a_kiosk_can_shop(tmp_path):
    cache.clear()
    path = tmp_path / "demo.json"
    seeded_orders = []
    for _ in range(2):  # idempotent: the second run places no second set of demo orders
        call_command(
            "seed_demo",
            "--inmates=8",
            "--seed=s",
            f"--credentials-out={path}",
            stdout=StringIO(),
            stderr=StringIO(),
        )
        seeded_orders.append(sorted(Order.objects.values_list("pk", "total_fen", "status")))
    assert seeded_orders[0] == seeded_orders[1] != []  # the demo's purchases are orders
    facility = Facility.objects.get(code="demo")
    assert FacilityProduct.objects.filter(facility=facility, stock__gt=0).count() == len(PRODUCTS)
    assert facility.grades.count() == len(GRADES)
    assert {g.name: g.festival_spending_limit_fen for g in facility.grades.all()} == (
        FESTIVAL_LIMITS_FEN
    )
    assert list(facility.festival_months.values_list("month", flat=True)) == [FESTIVAL_MONTH[0]]
    assert not Inmate.objects.filter(facility=facility, grade__isnull=True).exists()
    assert len({i.grade_id for i in Inmate.objects.filter(facility=facility)}) == len(GRADES)

    credentials = json.loads(path.read_text())
    first = credentials["inmates"][0]
    assert first["grade"] in [name for name, _ in GRADES]
    client = APIClient()
    auth = {"HTTP_AUTHORIZATION": f"Kiosk {credentials['kiosk']['key']}"}
    signed_in = client.post(
        "/api/kiosk/v1/sessions",
        {"inmate_number": first["inmate_number"], "pin": first["pin"]},
        format="json",
        **auth,
    )
    assert signed_in.status_code == 201, signed_in.content
    auth["HTTP_X_INMATE_SESSION"] = signed_in.json()["session"]
    catalog = client.get("/api/kiosk/v1/catalog", **auth).json()
    assert catalog["count"] == len(PRODUCTS)
    cheapest = min(catalog["results"], key=lambda product: product["price"])
    order = client.post(
        "/api/kiosk/v1/orders",
        {"items": [{"product_id": cheapest["id"], "quantity": 1}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="demo-1",
        **auth,
    )
    assert order.status_code == 201, order.content
    assert Order.objects.count() == len(seeded_orders[0]) + 1


def test_seed_demo_files_price_changes_and_one_open_dispute_once(tmp_path):
    from catalog.demo import DEMO_FIRST_PRICE_REASON, DEMO_PRICE_CHANGES
    from catalog.models import Dispute, OrderItem, PriceChange

    cache.clear()
    for _ in range(2):  # idempotent
        call_command(
            "seed_demo",
            "--inmates=3",
            "--seed=s",
            f"--credentials-out={tmp_path / 'demo.json'}",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    facility = Facility.objects.get(code="demo")
    # Each product's first price (version 1, with its cost), then the demo's changes.
    first = PriceChange.objects.filter(facility=facility, reason=DEMO_FIRST_PRICE_REASON)
    assert first.count() == len(PRODUCTS)
    assert not first.filter(cost_fen__gte=F("price_fen")).exists()
    assert PriceChange.objects.filter(facility=facility).count() == len(PRODUCTS) + len(
        DEMO_PRICE_CHANGES
    )
    # Every demo order was charged at a price version, none at a bare list price.
    lines = OrderItem.objects.filter(order__facility=facility)
    assert lines.exists() and not lines.filter(price_change__isnull=True).exists()
    assert PriceChange.objects.filter(facility=facility, effective_on__gt=F("created_at__date"))
    dispute = Dispute.objects.get(facility=facility)
    assert dispute.status == "open" and dispute.order.status == "delivered"
