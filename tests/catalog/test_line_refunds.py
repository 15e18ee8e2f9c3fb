"""Orders are charged for what was delivered: units that cannot be filled at picking are
refunded through the ledger at that moment, partial lines included, exactly once, and the
inmate's statement names the order line each refund is for."""

import pytest

from catalog import services
from catalog.models import LineRefund, Order
from commissary import errors
from facilities import services as facility_services
from ledger.models import Transaction
from ledger.selectors import inmate_balance
from tests.catalog.helpers import funded, product_at
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def placed():
    facility = FacilityFactory()
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    inmate = funded(InmateFactory(facility=facility), 10_000)
    noodles = product_at(facility, price_fen=450, name_en="Noodles")
    soap = product_at(facility, price_fen=300, name_en="Soap")
    order = services.place_order(
        inmate_id=inmate.pk,
        device_id=device.pk,
        items=[{"product_id": noodles.pk, "quantity": 4}, {"product_id": soap.pk, "quantity": 1}],
        idempotency_key="o1",
    )
    lines = {line.name_en: line for line in order.items.all()}
    return order, lines, inmate, StaffFactory(facilities=[facility])


def test_short_units_at_picking_are_refunded_at_once_partial_lines_included(placed):
    order, lines, inmate, staff = placed
    assert inmate_balance(inmate=inmate).spendable_fen == 10_000 - 2_100
    refunds = services.mark_order_picked(
        order_id=order.pk,
        staff_id=staff.pk,
        short={lines["Noodles"].pk: (1, "out_of_stock"), lines["Soap"].pk: (1, "damaged")},
    )
    assert sorted(refund.amount_fen for refund in refunds) == [300, 450]
    assert inmate_balance(inmate=inmate).spendable_fen == 10_000 - 2_100 + 750
    order.refresh_from_db()
    assert order.status == Order.Status.PICKED
    refunded = dict(order.items.values_list("name_en", "refunded_fen"))
    assert refunded == {"Noodles": 450, "Soap": 300}
    memos = list(
        Transaction.objects.filter(kind=Transaction.Kind.REFUND, refund_of=order.purchase)
        .order_by("memo")
        .values_list("memo", flat=True)
    )
    assert memos == [
        f"Refund for order #{order.pk}, line 1 × Soap: Damaged at picking",
        f"Refund for order #{order.pk}, line 4 × Noodles: Out of stock at picking",
    ]


def test_picking_twice_refunds_once(placed):
    order, lines, inmate, staff = placed
    short = {lines["Noodles"].pk: (2, "restricted")}
    services.mark_order_picked(order_id=order.pk, staff_id=staff.pk, short=short)
    with pytest.raises(errors.OrderStateConflict):
        services.mark_order_picked(order_id=order.pk, staff_id=staff.pk, short=short)
    assert LineRefund.objects.count() == 1
    assert inmate_balance(inmate=inmate).spendable_fen == 10_000 - 2_100 + 900


def test_more_units_short_than_the_line_holds_is_refused_and_moves_nothing(placed, ledger_snapshot):
    order, lines, _, staff = placed
    before = ledger_snapshot()
    with pytest.raises(errors.ValidationFailed):
        services.mark_order_picked(
            order_id=order.pk, staff_id=staff.pk, short={lines["Soap"].pk: (2, "damaged")}
        )
    assert ledger_snapshot() == before
    order.refresh_from_db()
    assert order.status == Order.Status.PLACED


def test_cancelling_after_a_short_pick_refunds_only_what_is_left(placed):
    order, lines, inmate, staff = placed
    services.mark_order_picked(
        order_id=order.pk, staff_id=staff.pk, short={lines["Noodles"].pk: (4, "out_of_stock")}
    )
    services.cancel_order(order_id=order.pk, staff_id=staff.pk, reason="Inmate moved")
    assert inmate_balance(inmate=inmate).spendable_fen == 10_000


def test_the_kiosk_statement_shows_the_refund_against_its_line(placed, client):
    from tests.kiosk.conftest import Kiosk

    order, lines, inmate, staff = placed
    services.mark_order_picked(
        order_id=order.pk, staff_id=staff.pk, short={lines["Soap"].pk: (1, "damaged")}
    )
    kiosk = Kiosk(inmate.facility)
    kiosk.sign_in(inmate)
    statement = kiosk.get("me/transactions").json()["results"]
    refund = statement[0]
    assert refund["kind"] == "refund" and refund["amount"] == 300
    assert (
        refund["description"] == f"Refund for order #{order.pk}, line 1 × Soap: Damaged at picking"
    )
    detail = kiosk.get(f"orders/{order.pk}").json()
    refunded = {item["line_id"]: item["refunded"] for item in detail["items"]}
    assert refunded == {lines["Noodles"].pk: 0, lines["Soap"].pk: 300}


def test_the_admin_pick_page_refunds_what_is_short(placed, client):
    from django.urls import reverse

    from accounts.roles import COMMISSARY_CLERK
    from tests.admin.conftest import staff_with_role

    order, lines, inmate, _ = placed
    clerk = staff_with_role(COMMISSARY_CLERK, inmate.facility)
    client.force_login(clerk)
    url = reverse("admin:catalog_order_pick", args=[order.pk])
    assert client.get(url).status_code == 200
    answer = client.post(
        url,
        {
            f"short-{lines['Noodles'].pk}": "2",
            f"reason-{lines['Noodles'].pk}": "out_of_stock",
            f"short-{lines['Soap'].pk}": "0",
            f"reason-{lines['Soap'].pk}": "damaged",
        },
    )
    assert answer.status_code == 302
    assert inmate_balance(inmate=inmate).spendable_fen == 10_000 - 2_100 + 900
    assert LineRefund.objects.get().created_by == clerk
