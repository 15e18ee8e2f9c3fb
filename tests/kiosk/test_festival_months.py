"""Festival months through the kiosk API: ``POST orders`` is held to the grade's festival limit
in one of the facility's festival months (422 ``spending_limit_exceeded`` beyond it, changing
nothing), ``GET me/balance`` reports that limit and its room, and the order costs no extra
statement for it."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Order
from facilities.models import FestivalMonth
from ledger.models import Account
from tests.catalog.helpers import funded, grade_at, product_at, stock_of

from .conftest import error_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
IN_FEBRUARY = dt.datetime(2027, 2, 10, 12, 0, tzinfo=SHANGHAI)
IN_MARCH = dt.datetime(2027, 3, 10, 12, 0, tzinfo=SHANGHAI)


@pytest.fixture
def festival(facility, inmate):
    """February 2027 is a festival month; the inmate's monthly grade allows ¥400, or ¥600 then."""
    FestivalMonth.objects.create(facility=facility, month=dt.date(2027, 2, 1), name="春节")
    inmate.grade = grade_at(facility, limit_fen=40_000, festival_limit_fen=60_000)
    inmate.save(update_fields=["grade"])
    return product_at(facility, price_fen=10_000, stock=100)


def _spendable(inmate) -> int:
    return Account.objects.get(inmate=inmate, kind="spendable").balance_fen


def test_in_a_festival_month_orders_go_up_to_the_festival_limit_then_get_422(
    kiosk, inmate, facility, festival
):
    with time_machine.travel(IN_FEBRUARY):
        funded(inmate, 90_000)
        kiosk.sign_in(inmate)
        with CaptureQueriesContext(connection) as queries:
            first = kiosk.order([{"product_id": festival.pk, "quantity": 6}], "a")
        assert first.status_code == 201, first.content
        assert first.json()["total"] == 60_000
        # The festival check rides in the order's read of the grade: the order's statements
        # are those of any graded order (five, and the spending sum).
        work = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"].upper()]
        assert len(work) == 6, "\n".join(sql[:100] for sql in work)

        refused = kiosk.order([{"product_id": festival.pk, "quantity": 1}], "b")
        assert refused.status_code == 422
        assert error_of(refused) == "spending_limit_exceeded"

        balance = kiosk.get("me/balance").json()
    assert balance["spending"] == {
        "period": "month",
        "spent": 60_000,
        "limit": 60_000,
        "remaining": 0,
    }
    assert balance["available"] == _spendable(inmate) == 30_000
    assert Order.objects.filter(inmate=inmate).count() == 1
    assert stock_of(festival, facility) == 94


def test_outside_the_festival_month_the_same_order_gets_422_at_the_usual_limit(
    kiosk, inmate, festival
):
    with time_machine.travel(IN_MARCH):
        funded(inmate, 90_000)
        kiosk.sign_in(inmate)
        assert kiosk.get("me/balance").json()["spending"] == {
            "period": "month",
            "spent": 0,
            "limit": 40_000,
            "remaining": 40_000,
        }
        refused = kiosk.order([{"product_id": festival.pk, "quantity": 6}], "a")
        assert refused.status_code == 422
        assert error_of(refused) == "spending_limit_exceeded"
        assert kiosk.order([{"product_id": festival.pk, "quantity": 4}], "b").status_code == 201
    assert _spendable(inmate) == 50_000


def test_the_balance_reports_the_festival_limit_and_what_remains_of_it(kiosk, inmate, festival):
    with time_machine.travel(IN_FEBRUARY):
        funded(inmate, 90_000)
        kiosk.sign_in(inmate)
        assert kiosk.order([{"product_id": festival.pk, "quantity": 1}], "a").status_code == 201
        spending = kiosk.get("me/balance").json()["spending"]
    assert spending == {"period": "month", "spent": 10_000, "limit": 60_000, "remaining": 50_000}
