"""A delivered order for the refund and dispute tests."""

import datetime as dt

from catalog import services
from facilities import services as facility_services
from tests.catalog.helpers import funded, order_from_kiosk, product_at
from tests.factories import FacilityFactory, InmateFactory, StaffFactory


def delivered_order(*, delivered_at: dt.datetime, quantity=3, price_fen=450, facility=None):
    """An inmate with 100 yuan who bought ``quantity`` noodles; the order was picked in full and
    delivered at ``delivered_at``. Returns (order, line, inmate, device, staff)."""
    facility = facility or FacilityFactory()
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    inmate = funded(InmateFactory(facility=facility), 10_000)
    product = product_at(facility, price_fen=price_fen, name_en="Noodles")
    staff = StaffFactory(facilities=[facility])
    order = order_from_kiosk(
        inmate, device, product, "order-1", quantity=quantity, now=delivered_at
    )
    services.mark_order_picked(order_id=order.pk, staff_id=staff.pk, now=delivered_at)
    services.mark_order_delivered(order_id=order.pk, staff_id=staff.pk, now=delivered_at)
    order.refresh_from_db()
    return order, order.items.get(), inmate, device, staff
