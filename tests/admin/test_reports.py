"""The dashboard and the reports show the facility's own figures, computed from the journal,
the deposits and the periods; CSV downloads carry exact yuan amounts; a disabled money
schedule is a warning on the dashboard."""

import csv
import datetime as dt
import io
import re

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from ledger import services
from ledger.schedules import ensure_schedules
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db


def dashboard(client, site):
    return client.get("/admin/reports/dashboard/", {"facility": site.facility.pk})


def test_the_dashboard_shows_money_in_trust_pending_deposits_and_cap_use(client, site_a, site_b):
    at_cap = InmateFactory(facility=site_a.facility)
    deposit(at_cap, site_a.facility.monthly_cap_fen)  # 1,000.00: at the monthly cap
    deposit(site_a.inmate, 12_345)
    services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=site_a.inmate.pk,
        amount_fen=500,
        idempotency_key=key(),
    )
    deposit(site_b.inmate, 99_900)  # another facility's money is not counted
    client.force_login(site_a.staff["auditor"])
    page = dashboard(client, site_a)
    context = page.context
    assert context["in_trust"] == "¥1,123.45"
    assert (context["pending_count"], context["pending_amount"]) == (1, "¥5.00")
    assert context["cap_use"].at_monthly_cap == 1 and context["cap_use"].inmates == 2
    assert context["deposit_count"] == 2 and context["deposit_total"] == "¥1,123.45"
    today = site_a.facility.local_date(timezone.now())
    assert context["deposit_days"] == [(today, 2, "¥1,123.45")]
    text = page.content.decode()
    assert f'src="/admin/reports/dashboard/chart/deposits.svg?facility={site_a.facility.pk}' in text
    assert not re.search(r"<script(?![^>]*\bsrc=)", text)  # no inline script (strict CSP)
    assert " style=" not in text and "<style" not in text


def test_a_disabled_money_schedule_is_a_warning_on_the_dashboard(client, site_a):
    ensure_schedules()
    client.force_login(site_a.staff["trust_officer"])
    assert "schedule-warning" not in dashboard(client, site_a).content.decode()
    PeriodicTask.objects.filter(name="Nightly reconciliation").update(enabled=False)
    page = dashboard(client, site_a).content.decode()
    assert "schedule-warning" in page and "Nightly reconciliation" in page


def test_deposits_by_day_and_provider_as_csv_in_exact_yuan(client, site_a):
    deposit(site_a.inmate, 12_345)
    deposit(site_a.inmate, 5)
    client.force_login(site_a.staff["trust_officer"])
    today = site_a.facility.local_date(timezone.now())
    answer = client.get(
        "/admin/reports/deposits/",
        {"facility": site_a.facility.pk, "format": "csv", "to": today.isoformat()},
    )
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0] == ["Day", "Provider", "Deposits", "Amount", "Fees"]
    assert rows[1][1:4] == ["sandbox", "2", "123.50"]


def test_trust_balance_at_a_date_is_summed_from_the_journal(client, site_a):
    deposit(site_a.inmate, 7_000)
    services.hold_funds(
        inmate_id=site_a.inmate.pk,
        amount_fen=2_000,
        reason="Court order",
        staff_id=site_a.staff["trust_officer"].pk,
        idempotency_key=key(),
    )
    client.force_login(site_a.staff["auditor"])
    answer = client.get("/admin/reports/balances/", {"facility": site_a.facility.pk})
    assert answer.context["rows"] == [
        [site_a.inmate.inmate_number, site_a.inmate.surname, "¥50.00", "¥20.00"]
    ]
    yesterday = client.get(
        "/admin/reports/balances/", {"facility": site_a.facility.pk, "date": "2000-01-01"}
    )
    assert yesterday.context["rows"] == []


def test_the_monthly_cap_report_lists_each_inmate_s_month(client, site_a):
    deposit(site_a.inmate, 30_000)
    client.force_login(site_a.staff["auditor"])
    answer = client.get("/admin/reports/caps/", {"facility": site_a.facility.pk, "format": "csv"})
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[1][2:] == ["300.00", "0.00", "1000.00", "700.00"]


def test_fees_collected_come_from_the_fees_account(client, site_a):
    site_a.facility.deposit_fee_rate_bp = 100  # 1%
    site_a.facility.save()
    deposit(site_a.inmate, 10_000)
    client.force_login(site_a.staff["auditor"])
    answer = client.get("/admin/reports/fees/", {"facility": site_a.facility.pk})
    assert [row[1] for row in answer.context["rows"]] == ["¥1.00"]


def _kiosk_order(site, product, quantity, key_text):
    from catalog import services as catalog_services
    from facilities import services as facility_services

    device, _ = facility_services.register_kiosk_device(facility=site.facility, name=key_text)
    return catalog_services.place_order(
        inmate_id=site.inmate.pk,
        device_id=device.pk,
        items=[{"product_id": product.pk, "quantity": quantity}],
        idempotency_key=key_text,
    )


def test_sales_by_product_counts_orders_not_cancelled_of_the_facility_only(client, site_a, site_b):
    from catalog import services as catalog_services
    from tests.catalog.helpers import product_at

    deposit(site_a.inmate, 50_000)
    deposit(site_b.inmate, 50_000)
    noodles = product_at(site_a.facility, price_fen=350, name_en="Noodles", name_zh="方便面")
    product_at(site_b.facility, price_fen=999)
    _kiosk_order(site_a, noodles, 3, "first")
    cancelled = _kiosk_order(site_a, noodles, 2, "second")
    catalog_services.cancel_order(
        order_id=cancelled.pk, staff_id=site_a.staff["clerk"].pk, reason="wrong item"
    )
    _kiosk_order(site_b, _offered_product(site_b), 1, "elsewhere")
    client.force_login(site_a.staff["auditor"])
    page = client.get("/admin/reports/sales/", {"facility": site_a.facility.pk, "format": "csv"})
    rows = list(csv.reader(io.StringIO(page.content.decode("utf-8-sig"))))
    assert rows[0] == ["SKU", "Product (Chinese)", "Product (English)", "Units sold", "Sales"]
    assert rows[1:] == [[noodles.sku, "方便面", "Noodles", "3", "10.50"]]


def _offered_product(site):
    from catalog.models import FacilityProduct

    return FacilityProduct.objects.filter(facility=site.facility).get().product


def test_the_dashboard_lists_products_running_low(client, site_a, site_b):
    from tests.catalog.helpers import product_at

    low = product_at(site_a.facility, stock=3, name_en="Soap", name_zh="肥皂")
    product_at(site_a.facility, stock=500, name_en="Paper", name_zh="纸")
    product_at(site_b.facility, stock=1, name_en="Elsewhere", name_zh="别处")
    client.force_login(site_a.staff["auditor"])
    page = dashboard(client, site_a)
    assert [offer.product for offer in page.context["low_stock"]] == [low]
    assert "3 left" in page.content.decode()


def test_a_reports_period_fields_are_labelled_in_the_readers_language(client, site_a):
    client.force_login(site_a.staff["auditor"])
    facility = {"facility": site_a.facility.pk}
    caps = client.get("/admin/reports/caps/", facility, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert '<label for="param-month">月份</label>' in caps.content.decode()
    deposits = client.get("/admin/reports/deposits/", facility, HTTP_ACCEPT_LANGUAGE="en")
    text = deposits.content.decode()
    assert '<label for="param-from">From</label>' in text
    assert '<label for="param-to">To</label>' in text
    balances = client.get("/admin/reports/balances/", facility, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert '<label for="param-date">日期</label>' in balances.content.decode()


def chart(client, site, kind, **params):
    return client.get(
        f"/admin/reports/dashboard/chart/{kind}.svg", {"facility": site.facility.pk, **params}
    )


@pytest.mark.parametrize("days", (7, 30, 90))
def test_the_dashboard_window_is_7_30_or_90_days_and_its_chart_is_an_svg_without_script(
    client, site_a, days
):
    deposit(site_a.inmate, 12_345)
    client.force_login(site_a.staff["auditor"])
    page = client.get("/admin/reports/dashboard/", {"facility": site_a.facility.pk, "days": days})
    context = page.context
    today = site_a.facility.local_date(timezone.now())
    assert (context["first_day"], context["last_day"]) == (
        today - dt.timedelta(days=days - 1),
        today,
    )
    answer = chart(client, site_a, "deposits", days=days)
    assert answer["Content-Type"].startswith("image/svg+xml")
    svg = answer.content.decode()
    assert "<script" not in svg
    assert "Day (facility time)" in svg and "Yuan" in svg  # labelled axes
    assert f"{today:%m-%d}</text>" in svg  # dates on the time axis
    assert "¥100.00</text>" in svg or "¥150.00</text>" in svg  # a yuan scale past the value
    assert svg.count('class="rect reactive tooltip-trigger"') == 1  # one day with money


def test_a_window_of_empty_days_still_draws_a_scale(client, site_a):
    client.force_login(site_a.staff["auditor"])
    svg = chart(client, site_a, "sales", days=7).content.decode()
    assert "¥1.00</text>" in svg and "Nothing on any of these days" in svg


@pytest.mark.parametrize("days", ("14", "x", "-7"))
def test_another_window_is_refused(client, site_a, days):
    client.force_login(site_a.staff["auditor"])
    page = client.get("/admin/reports/dashboard/", {"facility": site_a.facility.pk, "days": days})
    assert page.status_code == 400 and "Choose 7, 30 or 90 days." in page.content.decode()
    assert chart(client, site_a, "sales", days=days).status_code == 404


def test_another_facility_s_chart_is_not_found(client, site_a, site_b):
    client.force_login(site_a.staff["auditor"])
    assert chart(client, site_b, "deposits").status_code == 404


@pytest.mark.parametrize(
    ("slug", "params", "message"),
    [
        ("deposits", {"from": "2026-02-30"}, "Enter a date as year-month-day"),
        ("sales", {"from": "yesterday"}, "Enter a date as year-month-day"),
        ("fees", {"from": "2026-03-10", "to": "2026-03-01"}, "The period ends before it begins."),
        ("balances", {"date": "2999-01-01"}, "2999-01-01 is in the future"),
        ("caps", {"month": "2999-01-01"}, "2999-01-01 is in the future"),
    ],
)
def test_a_bad_reversed_or_future_date_is_refused_never_replaced(
    client, site_a, slug, params, message
):
    deposit(site_a.inmate, 12_345)
    client.force_login(site_a.staff["auditor"])
    page = client.get(f"/admin/reports/{slug}/", {"facility": site_a.facility.pk, **params})
    assert page.status_code == 400
    text = page.content.decode()
    assert message in text and 'class="report"' not in text
    csv_answer = client.get(
        f"/admin/reports/{slug}/", {"facility": site_a.facility.pk, "format": "csv", **params}
    )
    assert csv_answer.status_code == 400 and b"123.45" not in csv_answer.content


def test_a_refused_date_reads_in_chinese(client, site_a):
    client.force_login(site_a.staff["auditor"])
    page = client.get(
        "/admin/reports/fees/",
        {"facility": site_a.facility.pk, "from": "2026-03-10", "to": "2026-03-01"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "结束日期早于开始日期" in page.content.decode()


def test_without_a_window_asked_for_the_dashboard_shows_30_days_and_says_so(client, site_a):
    client.force_login(site_a.staff["auditor"])
    page = client.get("/admin/reports/dashboard/", {"facility": site_a.facility.pk})
    today = site_a.facility.local_date(timezone.now())
    assert page.context["first_day"] == today - dt.timedelta(days=29)
    days_select = re.search(r'<select name="days".*?</select>', page.content.decode(), re.S)
    assert re.findall(r'<option value="(\d+)" selected>', days_select.group(0)) == ["30"]
