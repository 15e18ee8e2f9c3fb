"""Clerk actions say why an order cannot take a step, and an action that can do nothing shows
a message, not a confirmation page."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.utils import timezone

from catalog import services as catalog_services
from catalog.models import Order
from facilities import services as facility_services
from facilities.models import Inmate
from tests.catalog.helpers import funded, product_at

pytestmark = pytest.mark.django_db
ORDERS = "/admin/catalog/order/"
EN = {"accept-language": "en"}


@pytest.fixture
def order(site_a):
    device, _ = facility_services.register_kiosk_device(facility=site_a.facility, name="K")
    product = product_at(site_a.facility, price_fen=450)
    funded(site_a.inmate, 10_000)
    return catalog_services.place_order(
        inmate_id=site_a.inmate.pk,
        device_id=device.pk,
        items=[{"product_id": product.pk, "quantity": 1}],
        idempotency_key="refusal-order",
    )


def _act(client, action, pks, url=ORDERS, **extra):
    answer = client.post(
        url, {"action": action, ACTION_CHECKBOX_NAME: pks, **extra}, headers=EN, follow=True
    )
    return answer, [str(message) for message in get_messages(answer.wsgi_request)]


def test_delivering_an_unpicked_order_says_it_must_be_picked_first(client, site_a, order):
    client.force_login(site_a.staff["clerk"])
    _, said = _act(client, "mark_delivered", [order.pk])
    assert said == [f"Order #{order.pk}: It must be picked before it is delivered."]
    assert Order.objects.get(pk=order.pk).status == "placed"


def test_picking_twice_and_acting_on_a_cancelled_order_say_why(client, site_a, order):
    client.force_login(site_a.staff["clerk"])
    _act(client, "mark_picked", [order.pk])
    _, said = _act(client, "mark_picked", [order.pk])
    assert said == [f"Order #{order.pk}: It is picked already."]
    _act(client, "cancel_orders", [order.pk], confirmed="yes", reason="Damaged")
    _, said = _act(client, "mark_delivered", [order.pk])
    assert said == [f"Order #{order.pk}: It was cancelled."]


def test_cancelling_only_delivered_or_cancelled_orders_shows_no_confirmation(client, site_a, order):
    client.force_login(site_a.staff["clerk"])
    _act(client, "mark_picked", [order.pk])
    _act(client, "mark_delivered", [order.pk])
    answer, said = _act(client, "cancel_orders", [order.pk])
    assert "admin/catalog/cancel_confirmation.html" not in [t.name for t in answer.templates]
    assert said == [
        "None of the selected orders can be cancelled: delivered and cancelled orders stay "
        "as they are."
    ]
    assert Order.objects.get(pk=order.pk).status == "delivered"


@pytest.mark.parametrize("action", ["release_inmates", "transfer_inmates"])
def test_moving_only_released_inmates_shows_no_confirmation(client, site_a, action):
    Inmate.objects.filter(pk=site_a.inmate.pk).update(
        status=Inmate.Status.RELEASED, released_at=timezone.now()
    )
    client.force_login(site_a.staff["facility_admin"])
    answer, said = _act(client, action, [site_a.inmate.pk], url="/admin/facilities/inmate/")
    assert answer.redirect_chain  # back to the list, no confirmation page
    assert said == ["None of the selected inmates is held here any more: released inmates stay."]
