"""Orders through the catalog services: fulfilment, cancellation with its refund, spending
periods in the facility's timezone, and refusals that change nothing."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from catalog import services
from catalog.models import Order
from commissary import errors
from facilities import services as facility_services
from facilities.models import spending_period_start
from ledger.models import Account, Entry, Transaction
from tests.catalog.helpers import funded, grade_at, order_from_kiosk, product_at, stock_of
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def setting():
    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility), 20_000)
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    staff = StaffFactory(facilities=[facility])
    return facility, inmate, device, staff


def _money(inmate):
    accounts = {a.kind: a.balance_fen for a in Account.objects.filter(inmate=inmate)}
    return accounts["spendable"], accounts["held"]


def test_an_order_moves_through_picked_to_delivered(setting):
    facility, inmate, device, staff = setting
    order = order_from_kiosk(inmate, device, product_at(facility), "a")
    services.mark_order_picked(order_id=order.pk, staff_id=staff.pk)
    services.mark_order_delivered(order_id=order.pk, staff_id=staff.pk)
    order.refresh_from_db()
    assert order.status == "delivered"
    assert order.picked_at and order.delivered_at
    with pytest.raises(errors.OrderStateConflict):
        services.cancel_order(order_id=order.pk, staff_id=staff.pk, reason="too late")
    with pytest.raises(errors.OrderStateConflict):
        services.mark_order_picked(order_id=order.pk, staff_id=staff.pk)


def test_delivery_needs_picking_first(setting):
    facility, inmate, device, staff = setting
    order = order_from_kiosk(inmate, device, product_at(facility), "b")
    with pytest.raises(errors.OrderStateConflict):
        services.mark_order_delivered(order_id=order.pk, staff_id=staff.pk)


def test_cancelling_refunds_the_money_restores_stock_and_gives_the_spending_room_back(setting):
    facility, inmate, device, staff = setting
    inmate.grade = grade_at(facility, limit_fen=3_000)
    inmate.save(update_fields=["grade"])
    product = product_at(facility, price_fen=1_000, stock=10)
    order = order_from_kiosk(inmate, device, product, "c", quantity=3)
    with pytest.raises(errors.SpendingLimitExceeded):
        order_from_kiosk(inmate, device, product, "d")
    services.mark_order_picked(order_id=order.pk, staff_id=staff.pk)

    services.cancel_order(order_id=order.pk, staff_id=staff.pk, reason="out of date")

    order.refresh_from_db()
    assert order.status == "cancelled"
    refund = Transaction.objects.get(pk=order.refund_id)
    assert (refund.kind, refund.refund_of_id) == ("refund", order.purchase_id)
    assert _money(inmate) == (20_000, 0)
    assert stock_of(product, facility) == 10
    assert order_from_kiosk(inmate, device, product, "e", quantity=3).total_fen == 3_000
    with pytest.raises(errors.OrderStateConflict):
        services.cancel_order(order_id=order.pk, staff_id=staff.pk, reason="again")
    assert Transaction.objects.filter(kind="refund").count() == 1


def test_a_cancelled_orders_refund_over_the_balance_cap_goes_to_held_money(setting):
    facility, inmate, device, staff = setting
    facility_services.update_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=100_000, balance_cap_fen=25_000
    )
    product = product_at(facility, price_fen=10_000)
    order = order_from_kiosk(inmate, device, product, "f")  # spendable 10,000
    deposit(inmate, 15_000)  # spendable 25,000: at the cap
    services.cancel_order(order_id=order.pk, staff_id=staff.pk, reason="damaged")
    assert _money(inmate) == (25_000, 10_000)
    legs = sorted(
        Entry.objects.filter(transaction_id=Order.objects.get().refund_id).values_list(
            "amount_fen", flat=True
        )
    )
    assert legs == [-10_000, 10_000]


def test_a_refused_order_changes_nothing(setting, ledger_snapshot):
    facility, inmate, device, _ = setting
    cheap = product_at(facility, price_fen=100, stock=5)
    dear = product_at(facility, price_fen=30_000, stock=5)
    before = ledger_snapshot()
    with pytest.raises(errors.InsufficientFunds):
        services.place_order(
            inmate_id=inmate.pk,
            device_id=device.pk,
            items=[{"product_id": cheap.pk, "quantity": 1}, {"product_id": dear.pk, "quantity": 1}],
            idempotency_key="g",
        )
    assert ledger_snapshot() == before
    assert (stock_of(cheap, facility), stock_of(dear, facility), Order.objects.count()) == (5, 5, 0)


def test_a_kiosk_of_another_facility_cannot_order_for_the_inmate(setting, ledger_snapshot):
    facility, inmate, _, _ = setting
    product = product_at(facility)
    far_device, _ = facility_services.register_kiosk_device(facility=FacilityFactory(), name="F")
    before = ledger_snapshot()
    with pytest.raises(errors.InmateNotFound):
        order_from_kiosk(inmate, far_device, product, "h")
    assert ledger_snapshot() == before


def test_a_week_starts_on_monday_midnight_in_the_facilitys_timezone():
    sunday_night = dt.datetime(2026, 11, 29, 23, 59, tzinfo=SHANGHAI)
    monday = dt.datetime(2026, 11, 30, 0, 0, tzinfo=SHANGHAI)
    assert spending_period_start(sunday_night, "Asia/Shanghai", "week") == dt.datetime(
        2026, 11, 23, tzinfo=SHANGHAI
    )
    assert spending_period_start(monday, "Asia/Shanghai", "week") == monday
    # 2026-11-29 16:30 UTC is already Monday 00:30 in Shanghai
    utc = dt.datetime(2026, 11, 29, 16, 30, tzinfo=dt.UTC)
    assert spending_period_start(utc, "Asia/Shanghai", "week") == monday
    assert spending_period_start(utc, "Asia/Shanghai", "month") == dt.datetime(
        2026, 11, 1, tzinfo=SHANGHAI
    )


def test_last_weeks_spending_does_not_count_against_this_week(setting):
    facility, inmate, device, _ = setting
    inmate.grade = grade_at(facility, limit_fen=2_000, period="week")
    inmate.save(update_fields=["grade"])
    product = product_at(facility, price_fen=1_000)
    sunday_night = dt.datetime(2026, 11, 29, 23, 30, tzinfo=SHANGHAI)
    order_from_kiosk(inmate, device, product, "i", quantity=2, now=sunday_night)
    with pytest.raises(errors.SpendingLimitExceeded):
        order_from_kiosk(inmate, device, product, "j", now=sunday_night + dt.timedelta(minutes=20))
    monday = sunday_night + dt.timedelta(minutes=31)
    assert order_from_kiosk(inmate, device, product, "k", quantity=2, now=monday).total_fen == 2_000


def test_units_taken_between_the_read_and_the_write_refuse_the_order_whole(setting, monkeypatch):
    """The stock is read unlocked and taken by the order's last statement only where the
    units are still there: units gone in between (another order's, simulated here in the same
    transaction) refuse the whole order, money and lines included, and name what is left."""
    facility, inmate, device, _staff = setting
    plenty, short = product_at(facility, stock=50), product_at(facility, stock=5, name_en="Soap")
    write = services.order_writes._OrderWrites.stock_order_and_items

    def taken_meanwhile(self):
        self.cursor.execute(
            "UPDATE catalog_facilityproduct SET stock = 1 WHERE product_id = %s", [short.pk]
        )
        return write(self)

    monkeypatch.setattr(
        services.order_writes._OrderWrites, "stock_order_and_items", taken_meanwhile
    )
    before = (_money(inmate), Transaction.objects.count(), Entry.objects.count())
    with pytest.raises(errors.OutOfStock) as refused:
        services.place_order(
            inmate_id=inmate.pk,
            device_id=device.pk,
            items=[
                {"product_id": plenty.pk, "quantity": 3},
                {"product_id": short.pk, "quantity": 2},
            ],
            idempotency_key="late",
        )
    assert "Only 1 of Soap" in str(refused.value.message)
    assert not Order.objects.exists()
    assert (_money(inmate), Transaction.objects.count(), Entry.objects.count()) == before
    assert (stock_of(plenty, facility), stock_of(short, facility)) == (50, 5)
