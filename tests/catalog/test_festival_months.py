"""Festival months: an order whose instant falls, in the facility's timezone, in one of the
facility's festival months is held to the grade's festival limit instead of its usual one; the
kiosk order (its one SQL statement) and the balance (``spending_of``) agree on it."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from catalog import selectors
from catalog.models import Order
from commissary import errors
from facilities import services as facility_services
from facilities.models import FestivalMonth
from facilities.selectors import spending_limit_for
from ledger.models import Account
from tests.catalog.helpers import funded, grade_at, order_from_kiosk, product_at, stock_of
from tests.factories import FacilityFactory, InmateFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
SPRING_FESTIVAL = dt.date(2027, 2, 1)
IN_FEBRUARY = dt.datetime(2027, 2, 10, 12, 0, tzinfo=SHANGHAI)
IN_JANUARY = dt.datetime(2027, 1, 15, 12, 0, tzinfo=SHANGHAI)
IN_MARCH = dt.datetime(2027, 3, 10, 12, 0, tzinfo=SHANGHAI)
USUAL_FEN, FESTIVAL_FEN, PRICE_FEN = 3_000, 5_000, 1_000


@pytest.fixture
def shop():
    """A Shanghai facility with February 2027 declared a festival month, a product at ¥10 and
    a funded inmate whose monthly grade allows ¥30, or ¥50 in a festival month."""
    facility = FacilityFactory(timezone="Asia/Shanghai")
    FestivalMonth.objects.create(facility=facility, month=SPRING_FESTIVAL, name="春节")
    inmate = funded(InmateFactory(facility=facility), 20_000)
    inmate.grade = grade_at(facility, limit_fen=USUAL_FEN, festival_limit_fen=FESTIVAL_FEN)
    inmate.save(update_fields=["grade"])
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    return facility, inmate, device, product_at(facility, price_fen=PRICE_FEN, stock=100)


def _order(shop, quantity, now, key):
    _facility, inmate, device, product = shop
    return order_from_kiosk(inmate, device, product, key, quantity, now=now)


def _spendable(inmate) -> int:
    return Account.objects.get(inmate=inmate, kind="spendable").balance_fen


def test_in_a_festival_month_an_order_may_spend_up_to_the_festival_limit_and_no_more(shop):
    facility, inmate, _device, product = shop
    assert _order(shop, 5, IN_FEBRUARY, "f1").total_fen == FESTIVAL_FEN

    with pytest.raises(errors.SpendingLimitExceeded):
        _order(shop, 1, IN_FEBRUARY + dt.timedelta(hours=1), "f2")

    assert Order.objects.filter(inmate=inmate).count() == 1
    assert _spendable(inmate) == 20_000 - FESTIVAL_FEN
    assert stock_of(product, facility) == 95


@pytest.mark.parametrize(
    ("now", "allowed"),
    [(IN_FEBRUARY, True), (IN_JANUARY, False), (IN_MARCH, False)],
    ids=["festival-february", "january", "march"],
)
def test_the_same_order_is_refused_at_the_usual_limit_outside_the_festival_month(
    shop, now, allowed
):
    _facility, inmate, _device, _product = shop
    if allowed:
        assert _order(shop, 4, now, "o").total_fen == 4_000
    else:
        with pytest.raises(errors.SpendingLimitExceeded):
            _order(shop, 4, now, "o")
        assert _order(shop, 3, now, "o-usual").total_fen == USUAL_FEN
    assert _spendable(inmate) == 20_000 - (4_000 if allowed else USUAL_FEN)


@pytest.mark.parametrize(
    ("now", "timezone_name", "limit_fen"),
    [
        # 2027-01-31 16:30 UTC is 1 February 00:30 in Shanghai: the festival month there.
        (dt.datetime(2027, 1, 31, 16, 30, tzinfo=dt.UTC), "Asia/Shanghai", FESTIVAL_FEN),
        # The same instant at a facility kept in UTC is still 31 January.
        (dt.datetime(2027, 1, 31, 16, 30, tzinfo=dt.UTC), "UTC", USUAL_FEN),
        # 2027-02-28 16:30 UTC is 1 March 00:30 in Shanghai: the festival month is over there.
        (dt.datetime(2027, 2, 28, 16, 30, tzinfo=dt.UTC), "Asia/Shanghai", USUAL_FEN),
        (dt.datetime(2027, 2, 28, 16, 30, tzinfo=dt.UTC), "UTC", FESTIVAL_FEN),
    ],
    ids=["feb-1-in-shanghai", "jan-31-in-utc", "mar-1-in-shanghai", "feb-28-in-utc"],
)
def test_the_facility_timezone_decides_whether_an_instant_is_in_the_festival_month(
    shop, now, timezone_name, limit_fen
):
    facility, inmate, _device, _product = shop
    facility.timezone = timezone_name
    facility.save(update_fields=["timezone"])
    inmate.refresh_from_db()

    assert spending_limit_for(inmate.grade, now, timezone_name) == limit_fen
    assert selectors.spending_of(inmate=inmate, now=now).limit_fen == limit_fen
    over_the_usual_limit = USUAL_FEN // PRICE_FEN + 1
    if limit_fen == FESTIVAL_FEN:
        assert _order(shop, over_the_usual_limit, now, "tz").total_fen == 4_000
    else:
        with pytest.raises(errors.SpendingLimitExceeded):
            _order(shop, over_the_usual_limit, now, "tz")


def test_another_facility_s_festival_month_does_not_apply(shop):
    facility, inmate, _device, _product = shop
    FestivalMonth.objects.filter(facility=facility).delete()
    FestivalMonth.objects.create(facility=FacilityFactory(), month=SPRING_FESTIVAL, name="春节")

    with pytest.raises(errors.SpendingLimitExceeded):
        _order(shop, 4, IN_FEBRUARY, "elsewhere")
    assert selectors.spending_of(inmate=inmate, now=IN_FEBRUARY).limit_fen == USUAL_FEN


def test_a_grade_without_a_festival_limit_keeps_its_usual_limit_in_a_festival_month(shop):
    facility, inmate, _device, _product = shop
    inmate.grade = grade_at(facility, limit_fen=USUAL_FEN)
    inmate.save(update_fields=["grade"])

    with pytest.raises(errors.SpendingLimitExceeded):
        _order(shop, 4, IN_FEBRUARY, "plain")
    assert _order(shop, 3, IN_FEBRUARY, "plain-ok").total_fen == USUAL_FEN
    assert selectors.spending_of(inmate=inmate, now=IN_FEBRUARY).limit_fen == USUAL_FEN


def test_a_weekly_grade_takes_the_festival_limit_on_the_days_of_the_festival_month(shop):
    """October 2026 is a festival month; its first week runs from Monday 28 September. The
    order's own local date decides the limit, and the whole week's spending counts."""
    facility, inmate, _device, _product = shop
    FestivalMonth.objects.create(facility=facility, month=dt.date(2026, 10, 1), name="国庆")
    inmate.grade = grade_at(facility, limit_fen=2_000, festival_limit_fen=4_000, period="week")
    inmate.save(update_fields=["grade"])
    tuesday = dt.datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI)
    wednesday, thursday = tuesday + dt.timedelta(days=1), tuesday + dt.timedelta(days=2)

    _order(shop, 2, tuesday, "tue")
    with pytest.raises(errors.SpendingLimitExceeded):
        _order(shop, 1, wednesday, "wed")  # 30 September: the usual ¥20 a week
    assert _order(shop, 2, thursday, "thu").total_fen == 2_000  # 1 October: ¥40 this week
    with pytest.raises(errors.SpendingLimitExceeded):
        _order(shop, 1, thursday + dt.timedelta(hours=1), "thu-2")

    spending = selectors.spending_of(inmate=inmate, now=thursday)
    assert (spending.period, spending.spent_fen, spending.limit_fen) == ("week", 4_000, 4_000)


def test_the_balance_reports_the_festival_limit_and_room_in_a_festival_month(shop):
    _facility, inmate, _device, _product = shop
    _order(shop, 2, IN_FEBRUARY, "b1")

    in_february = selectors.spending_of(inmate=inmate, now=IN_FEBRUARY)
    assert (in_february.limit_fen, in_february.remaining_fen) == (FESTIVAL_FEN, 3_000)
    assert selectors.spending_of(inmate=inmate, now=IN_MARCH).limit_fen == USUAL_FEN


def test_no_grade_means_no_limit_in_a_festival_month_too():
    assert spending_limit_for(None, IN_FEBRUARY, "Asia/Shanghai") is None
