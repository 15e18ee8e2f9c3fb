"""Prices with a history: a facility's markup cap refuses a price above it, rises take effect
on a facility-local date after the notice and not a second earlier, cuts at once, orders pay
the price in force and their lines point at it, and the history cannot be rewritten."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import DatabaseError, connection, transaction

from catalog import selectors
from catalog.models import FacilityProduct, OrderItem, PriceChange
from catalog.services import prices
from commissary import errors
from facilities import services as facility_services
from tests.catalog.helpers import funded, order_from_kiosk, product_at
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def shop():
    facility = FacilityFactory(markup_cap_bp=3_500, price_rise_notice_days=3)
    product = product_at(facility, price_fen=1_200)
    offer = FacilityProduct.objects.get(facility=facility, product=product)
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    inmate = funded(InmateFactory(facility=facility), 100_000)
    return facility, product, offer, device, inmate


def _file(offer, *, cost_fen=1_000, price_fen, now, **extra):
    return prices.file_price_change(
        facility_product_id=offer.pk,
        cost_fen=cost_fen,
        price_fen=price_fen,
        reason="Supplier price",
        staff_id=StaffFactory().pk,
        now=now,
        **extra,
    )


def test_the_markup_cap_allows_its_boundary_and_refuses_one_fen_above(shop):
    _, _, offer, _, _ = shop
    now = dt.datetime(2026, 12, 5, 10, 0, tzinfo=SHANGHAI)
    with pytest.raises(errors.MarkupCapExceeded) as refused:
        _file(offer, cost_fen=1_000, price_fen=1_351, now=now)
    assert "35%" in refused.value.message and "¥13.50" in refused.value.message
    assert not PriceChange.objects.exists()
    at_cap = _file(offer, cost_fen=1_000, price_fen=1_350, now=now)
    assert (at_cap.price_fen, at_cap.cost_fen, at_cap.markup_bp) == (1_350, 1_000, 3_500)


def test_without_a_cap_any_price_over_cost_is_accepted(shop):
    facility, _, offer, _, _ = shop
    facility.markup_cap_bp = None
    facility.save(update_fields=["markup_cap_bp"])
    cut = _file(offer, cost_fen=100, price_fen=900, now=dt.datetime(2026, 12, 5, tzinfo=SHANGHAI))
    assert cut.markup_bp == 80_000


def test_a_rise_takes_effect_on_its_local_date_and_not_a_second_earlier(shop):
    _, product, offer, device, inmate = shop
    filed = dt.datetime(2026, 12, 5, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC, the 5th locally
    rise = _file(offer, cost_fen=1_000, price_fen=1_300, now=filed)
    assert rise.effective_on == dt.date(2026, 12, 8)  # three days' notice, local dates
    assert rise.effective_from == dt.datetime(2026, 12, 8, tzinfo=SHANGHAI)
    assert rise.previous_price_fen == 1_200
    just_before = dt.datetime(2026, 12, 7, 23, 59, 59, 999_999, tzinfo=SHANGHAI)
    before = order_from_kiosk(inmate, device, product, "before", now=just_before)
    at_midnight = order_from_kiosk(
        inmate, device, product, "at", now=dt.datetime(2026, 12, 8, tzinfo=SHANGHAI)
    )
    assert before.total_fen == 1_200 and at_midnight.total_fen == 1_300
    lines = {line.order_id: line for line in OrderItem.objects.all()}
    assert lines[before.pk].price_change_id is None  # the list price, no change filed
    assert lines[at_midnight.pk].price_change_id == rise.pk
    assert lines[at_midnight.pk].unit_price_fen == 1_300


def test_a_rise_before_the_notice_is_refused_and_a_later_date_is_kept(shop):
    _, _, offer, _, _ = shop
    filed = dt.datetime(2026, 12, 5, 9, 0, tzinfo=SHANGHAI)
    with pytest.raises(errors.PriceRiseTooSoon) as refused:
        _file(offer, price_fen=1_300, now=filed, effective_on=dt.date(2026, 12, 7))
    assert "2026-12-08" in refused.value.message
    assert not PriceChange.objects.exists()
    later = _file(offer, price_fen=1_300, now=filed, effective_on=dt.date(2026, 12, 20))
    assert later.effective_on == dt.date(2026, 12, 20)


def test_a_cut_takes_effect_at_once_and_orders_pay_it(shop):
    _, product, offer, device, inmate = shop
    filed = dt.datetime(2026, 12, 5, 9, 0, tzinfo=SHANGHAI)
    cut = _file(offer, price_fen=1_100, now=filed)
    assert cut.effective_from == filed and cut.effective_on == dt.date(2026, 12, 5)
    order = order_from_kiosk(
        inmate, device, product, "after-cut", now=filed + dt.timedelta(seconds=1)
    )
    assert order.total_fen == 1_100
    assert OrderItem.objects.get(order=order).price_change_id == cut.pk


def test_no_notice_means_a_rise_starts_when_filed_not_at_midnight(shop):
    facility, product, offer, device, inmate = shop
    facility.price_rise_notice_days = 0
    facility.save(update_fields=["price_rise_notice_days"])
    cut_at = dt.datetime(2026, 12, 5, 9, 0, tzinfo=SHANGHAI)
    _file(offer, price_fen=1_000, now=cut_at)
    rise = _file(offer, price_fen=1_250, now=cut_at + dt.timedelta(hours=2))
    assert rise.effective_from == cut_at + dt.timedelta(hours=2)
    order = order_from_kiosk(inmate, device, product, "k", now=cut_at + dt.timedelta(hours=1))
    assert order.total_fen == 1_000  # the cut, not the later rise pushed back to midnight


def test_the_kiosk_catalog_shows_the_price_now_and_the_announced_rise(shop):
    _, product, offer, _, inmate = shop
    filed = dt.datetime(2026, 12, 5, 9, 0, tzinfo=SHANGHAI)
    _file(offer, price_fen=1_300, now=filed)
    listed = selectors.catalog_for(inmate=inmate, now=filed + dt.timedelta(hours=1)).get()
    assert (listed.price_now_fen, listed.next_price_fen) == (1_200, 1_300)
    assert listed.next_price_on == dt.date(2026, 12, 8)
    later = selectors.catalog_for(inmate=inmate, now=dt.datetime(2026, 12, 8, tzinfo=SHANGHAI))
    assert (later.get().price_now_fen, later.get().next_price_fen) == (1_300, None)


def test_an_old_order_keeps_what_it_paid_after_a_price_change(shop):
    _, product, offer, device, inmate = shop
    filed = dt.datetime(2026, 12, 5, 9, 0, tzinfo=SHANGHAI)
    first = order_from_kiosk(inmate, device, product, "first", now=filed)
    _file(offer, price_fen=900, now=filed + dt.timedelta(minutes=1))
    line = OrderItem.objects.get(order=first)
    assert (line.unit_price_fen, line.price_change_id) == (1_200, None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_the_price_history_is_append_only_in_the_database(shop):
    _, _, offer, _, _ = shop
    change = _file(offer, price_fen=1_100, now=dt.datetime(2026, 12, 5, tzinfo=SHANGHAI))
    with pytest.raises(DatabaseError), transaction.atomic():
        PriceChange.objects.filter(pk=change.pk).update(price_fen=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        PriceChange.objects.filter(pk=change.pk).delete()
    change.refresh_from_db()
    assert change.price_fen == 1_100
