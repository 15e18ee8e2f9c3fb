"""The reports' and the dashboard's "today" is the facility's local date, at any hour.

Each test runs at frozen instants on both sides of Shanghai's midnight (16:00 UTC), late in
the UTC evening, and at the last second of a Shanghai month, so the suite's result does not
depend on the hour it runs. Before the fix the reports took the UTC date: from 16:00 to 24:00
UTC (00:00 to 08:00 in Beijing) they left out the facility's today and showed yesterday's
balances.
"""

import csv
import datetime as dt
import io

import pytest
import time_machine
from django.utils import timezone

from facilities.models import local_date
from tests.catalog.helpers import funded, order_from_kiosk, product_at
from tests.ledger.helpers import SHANGHAI, deposit, key

pytestmark = pytest.mark.django_db

UTC = dt.UTC
INSTANTS = {
    # 23:59:59 in Shanghai: the UTC date and the local date agree.
    "just before local midnight": dt.datetime(2026, 6, 10, 15, 59, 59, tzinfo=UTC),
    # 00:00:01 on the 11th in Shanghai, still the 10th in UTC.
    "just after local midnight": dt.datetime(2026, 6, 10, 16, 0, 1, tzinfo=UTC),
    # 07:30 in Shanghai: the hour staff open the reports.
    "late in the UTC evening": dt.datetime(2026, 6, 10, 23, 30, tzinfo=UTC),
    # 23:59:59 on 30 June in Shanghai: the last second of the local month.
    "last second of a local month": dt.datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC),
    # 00:00:00 on 1 July in Shanghai, 30 June in UTC.
    "first second of a local month": dt.datetime(2026, 6, 30, 16, 0, 0, tzinfo=UTC),
}


@pytest.fixture(params=list(INSTANTS.values()), ids=list(INSTANTS))
def frozen(request):
    with time_machine.travel(request.param, tick=False):
        yield request.param


def csv_rows(answer):
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def test_the_facility_local_date_is_the_shanghai_date_of_the_instant(frozen):
    assert local_date(frozen, "Asia/Shanghai") == frozen.astimezone(SHANGHAI).date()
    assert local_date(frozen, "UTC") == frozen.date()


def test_the_deposits_and_fees_reports_include_the_facilitys_today_by_default(
    client, site_a, frozen
):
    site_a.facility.deposit_fee_fixed_fen = 200
    site_a.facility.save(update_fields=["deposit_fee_fixed_fen"])
    deposit(site_a.inmate, 12_345)
    client.force_login(site_a.staff["trust_officer"])
    today = frozen.astimezone(SHANGHAI).date().isoformat()
    deposits = csv_rows(
        client.get("/admin/reports/deposits/", {"facility": site_a.facility.pk, "format": "csv"})
    )
    assert deposits[1:] == [[today, "sandbox", "1", "123.45", "2.00"]]
    fees = csv_rows(
        client.get("/admin/reports/fees/", {"facility": site_a.facility.pk, "format": "csv"})
    )
    assert fees[1:] == [[today, "2.00"]]


def test_the_balances_report_shows_todays_balance_by_default(client, site_a, frozen):
    deposit(site_a.inmate, 94_400, now=frozen - dt.timedelta(hours=1))
    deposit(site_a.inmate, 100)
    client.force_login(site_a.staff["auditor"])
    rows = csv_rows(
        client.get("/admin/reports/balances/", {"facility": site_a.facility.pk, "format": "csv"})
    )
    assert rows[1][0] == site_a.inmate.inmate_number
    assert rows[1][2:] == ["945.00", "0.00"]


def test_the_sales_report_includes_todays_orders_by_default(client, site_a, frozen):
    from facilities import services as facility_services

    device, _raw_key = facility_services.register_kiosk_device(facility=site_a.facility, name="K")
    product = product_at(site_a.facility, price_fen=750)
    funded(site_a.inmate, 10_000)
    order_from_kiosk(site_a.inmate, device, product, key("order"), quantity=2)
    client.force_login(site_a.staff["auditor"])
    rows = csv_rows(
        client.get("/admin/reports/sales/", {"facility": site_a.facility.pk, "format": "csv"})
    )
    assert [(row[0], row[3], row[4]) for row in rows[1:]] == [(product.sku, "2", "15.00")]


def test_the_caps_report_defaults_to_the_facilitys_month(client, site_a, frozen):
    deposit(site_a.inmate, 30_000)
    client.force_login(site_a.staff["auditor"])
    answer = client.get("/admin/reports/caps/", {"facility": site_a.facility.pk})
    month = frozen.astimezone(SHANGHAI).date().replace(day=1)
    assert dict((name, value) for name, _label, value in answer.context["params"]) == {
        "month": month
    }
    rows = csv_rows(
        client.get("/admin/reports/caps/", {"facility": site_a.facility.pk, "format": "csv"})
    )
    assert rows[1][2] == "300.00"


def test_the_dashboards_last_bar_is_the_facilitys_today(client, site_a, frozen):
    deposit(site_a.inmate, 5_000)
    client.force_login(site_a.staff["auditor"])
    page = client.get("/admin/reports/dashboard/", {"facility": site_a.facility.pk})
    today = frozen.astimezone(SHANGHAI).date()
    assert page.context["last_day"] == today
    assert page.context["deposit_days"] == [(today, 1, "¥50.00")]  # today's deposit, today
    assert page.context["deposit_total"] == "¥50.00"
    svg = client.get(page.context["deposit_chart_url"]).content.decode()
    assert f"{today:%m-%d}</text>" in svg  # the time axis ends on the facility's today


def test_now_is_frozen_in_these_tests(frozen):
    """Guards the guard: the fixture really freezes the clock the code reads."""
    assert timezone.now() == frozen
