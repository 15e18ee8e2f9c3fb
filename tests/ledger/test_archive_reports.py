"""The reports of an archived month's days read the same after the detach: the daily sales and
fees, sales by product and the trust balances at a day inside the month answer from the day
totals the detach keeps (``ArchivedDayTotal``), in facilities of different timezones (the
partitions' months are Shanghai's, so a facility in Urumqi has days that two months share).
Where the kept totals cannot give a figure (a month detached before they were kept, or a
facility whose timezone changed since), the page says so and shows no figure for it."""

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from accounts.roles import AUDITOR, COMMISSARY_CLERK, assign_role
from catalog import services as catalog_services
from facilities.models import Facility
from ledger import batch, partitions, services
from ledger.models import (
    ArchivedAccountTotal,
    ArchivedDayTotal,
    ArchivedJournalMonth,
    Entry,
    ScheduledRun,
)
from reports import selectors as reports
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

from .helpers import archived_month, key, kiosk_order

SHANGHAI = ZoneInfo("Asia/Shanghai")
URUMQI = ZoneInfo("Asia/Urumqi")
JANUARY = dt.date(2018, 1, 1)
# From the last day of December to the first days of February, in both facilities' days.
FIRST, LAST = dt.date(2017, 12, 30), dt.date(2018, 2, 2)
BALANCE_DAYS = ("2017-12-31", "2018-01-01", "2018-01-15", "2018-01-16", "2018-01-31", "2018-02-01")


def page_text(page) -> str:
    """The page's HTML with its escaped apostrophes read back, so a sentence can be found."""
    return page.content.decode().replace("&#x27;", "'")


def _staff(role, *facilities):
    user = StaffFactory(facilities=list(facilities))
    assign_role(user, role)
    return user


def _deposit(inmate, amount_fen: int, at: dt.datetime):
    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key("deposit"),
        now=at,
    )
    return services.credit_deposit(deposit_id=reserved.pk, now=at)


def _figures(client, facilities) -> dict:
    """Every figure of the archived month's days, as the pages and the CSV files give them."""
    figures = {}
    for facility in facilities:
        period = {"facility": facility.pk, "from": FIRST.isoformat(), "to": LAST.isoformat()}
        for slug in ("fees", "sales"):
            page = client.get(f"/admin/reports/{slug}/", period)
            assert page.status_code == 200
            figures[facility.code, slug] = (page.context["rows"], page.context["notes"])
            download = client.get(f"/admin/reports/{slug}/", {**period, "format": "csv"})
            figures[facility.code, slug, "csv"] = download.content.decode("utf-8-sig")
        for day in BALANCE_DAYS:
            page = client.get("/admin/reports/balances/", {"facility": facility.pk, "date": day})
            figures[facility.code, "balances", day] = (page.context["rows"], page.context["notes"])
        figures[facility.code, "sales per day"] = reports.sales_per_day(
            facility=facility, days=(LAST - FIRST).days + 1, today=LAST
        )
    return figures


@pytest.fixture
def two_facilities():
    """A facility in Shanghai and one in Urumqi (two hours behind), each with two inmates
    admitted in December 2017, fees on deposits, and money moving all through January 2018,
    at the edges of both facilities' days and of the month."""
    partitions.ensure_partitions(now=dt.datetime(2018, 1, 15, tzinfo=SHANGHAI), ahead=1)
    east = FacilityFactory(code="east", timezone="Asia/Shanghai", deposit_fee_rate_bp=100)
    west = FacilityFactory(code="west", timezone="Asia/Urumqi", deposit_fee_rate_bp=200)
    admitted = dt.datetime(2017, 12, 1, 12, tzinfo=SHANGHAI)
    e1, e2 = (InmateFactory(facility=east, now=admitted) for _ in range(2))
    w1, w2 = (InmateFactory(facility=west, now=admitted) for _ in range(2))
    clerk = _staff(COMMISSARY_CLERK, east, west)

    def sh(day, hour, minute=0, month=1, year=2018):
        return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)

    def ur(day, hour, minute=0, month=1, year=2018):
        return dt.datetime(year, month, day, hour, minute, tzinfo=URUMQI)

    # Shanghai: the first minutes of the month, two purchases a day apart, one cancelled the
    # next day (a refund: negative sales), a hold, the month's last minutes, then February.
    _deposit(e2, 15_000, sh(1, 0, 30))
    _deposit(e1, 20_000, sh(2, 10))
    kiosk_order(e1, 1_200, now=sh(2, 15))
    cancelled = kiosk_order(e1, 800, now=sh(15, 23, 50))
    catalog_services.cancel_order(
        order_id=cancelled.pk, staff_id=clerk.pk, reason="wrong item", now=sh(16, 9)
    )
    kiosk_order(e1, 650, now=sh(16, 9, 30))
    services.hold_funds(
        inmate_id=e2.pk,
        amount_fen=2_000,
        reason="Court order",
        staff_id=_staff(AUDITOR, east).pk,
        idempotency_key=key("hold"),
        now=sh(20, 11),
    )
    kiosk_order(e2, 500, now=sh(31, 23, 30))
    _deposit(e1, 5_000, sh(1, 0, 10, month=2))
    # Urumqi: a deposit on its 31 December that is Shanghai's 1 January (the January
    # partition), one in its first minutes of January, purchases mid-month, on its 31 January
    # early (January's partition) and late (already February's in Shanghai), then February.
    _deposit(w1, 30_000, ur(31, 23, 30, month=12, year=2017))
    _deposit(w2, 10_000, ur(1, 0, 30))
    kiosk_order(w1, 2_000, now=ur(15, 12))
    kiosk_order(w1, 300, now=ur(31, 1))
    kiosk_order(w2, 700, now=ur(31, 23))
    _deposit(w2, 4_000, ur(1, 12, month=2))
    return east, west


@pytest.mark.django_db(transaction=True)
def test_the_reports_of_an_archived_months_days_read_the_same_after_the_detach(
    client, two_facilities
):
    east, west = two_facilities
    client.force_login(_staff(AUDITOR, east, west))
    before = _figures(client, (east, west))
    # The figures are the month's money, not empty pages: Urumqi's 31 December is a day of the
    # January partition, its 31 January spans both months.
    west_fees = dict(before["west", "fees"][0])
    assert west_fees[dt.date(2017, 12, 31)] == "¥6.00"
    assert west_fees[dt.date(2018, 1, 1)] == "¥2.00"
    west_sales = dict(before["west", "sales per day"][0])
    assert (west_sales[dt.date(2018, 1, 15)], west_sales[dt.date(2018, 1, 31)]) == (2_000, 1_000)
    east_sales = dict(before["east", "sales per day"][0])
    assert (east_sales[dt.date(2018, 1, 16)], east_sales[dt.date(2018, 1, 31)]) == (-150, 500)
    first, second = east.inmates.order_by("inmate_number")
    assert before["east", "balances", "2018-01-15"][0] == [
        [first.inmate_number, first.surname, "¥180.00", "¥0.00"],
        [second.inmate_number, second.surname, "¥150.00", "¥0.00"],
    ]
    assert before["east", "balances", "2018-01-31"][0][1][2:] == ["¥125.00", "¥20.00"]
    # Nothing is archived yet: no page has a note, no day is unknown.
    assert all(not value[1] for value in before.values() if isinstance(value, tuple))

    assert batch.reconcile_ledger().status == ScheduledRun.Status.SUCCEEDED
    january = Entry.objects.filter(created_at__lt=partitions.month_start(dt.date(2018, 2, 1)))
    january_entries = january.count()
    out = io.StringIO()
    call_command("detach_journal_month", "--dry-run", stdout=out)
    assert "Nothing was changed" in out.getvalue()
    assert not ArchivedDayTotal.objects.exists()
    try:
        out = io.StringIO()
        call_command("detach_journal_month", "2018-01", stdout=out)
        assert "day totals for the sales, fees and trust balances of its days" in out.getvalue()
        assert not january.exists()
        archived = ArchivedJournalMonth.objects.get()
        assert archived.has_day_totals
        # One total an account and a day, not one an entry: Shanghai's sales account has one
        # row for its 16 January's refund and purchase. Urumqi's 31 December in the January
        # partition covers that day's last two hours only.
        assert ArchivedDayTotal.objects.count() < january_entries
        # Each account's days add up to its month's total, for every account of those kinds.
        by_days = ArchivedDayTotal.objects.values("account").annotate(total=Sum("amount_fen"))
        assert {row["account"]: row["total"] for row in by_days} == dict(
            ArchivedAccountTotal.objects.filter(
                account__kind__in=["spendable", "held", "sales", "fees"]
            ).values_list("account", "amount_fen")
        )
        east_sales_days = ArchivedDayTotal.objects.filter(
            account__facility=east, account__kind="sales"
        )
        assert sorted(east_sales_days.values_list("day", "amount_fen")) == [
            (dt.date(2018, 1, 2), 1_200),
            (dt.date(2018, 1, 15), 800),
            (dt.date(2018, 1, 16), -150),
            (dt.date(2018, 1, 31), 500),
        ]
        west_december = ArchivedDayTotal.objects.get(
            account__facility=west, account__kind="fees", day=dt.date(2017, 12, 31)
        )
        assert (west_december.starts_at, west_december.ends_at, west_december.amount_fen) == (
            dt.datetime(2018, 1, 1, tzinfo=SHANGHAI),
            dt.datetime(2018, 1, 1, 2, tzinfo=SHANGHAI),
            600,
        )

        assert _figures(client, (east, west)) == before

        # Urumqi's facility moves to Shanghai's time: its kept days no longer end at its days,
        # so a balance inside January and the days its totals span are not given.
        Facility.objects.filter(pk=west.pk).update(timezone="Asia/Shanghai")
        balances = client.get(
            "/admin/reports/balances/", {"facility": west.pk, "date": "2018-01-15"}
        )
        assert balances.context["rows"] == []
        (note,) = balances.context["notes"]
        assert "entries of 2018-01 are archived" in note
        assert note in page_text(balances)
        fees = client.get(
            "/admin/reports/fees/",
            {"facility": west.pk, "from": "2018-01-01", "to": "2018-01-31", "format": "csv"},
        )
        rows = list(csv.reader(io.StringIO(fees.content.decode("utf-8-sig"))))
        assert rows[-1] == [
            "Not given for 2018-01-01 – 2018-01-02: the journal's entries of these days are "
            "archived without day totals that fit this facility's days. Restore the archived "
            "month to read them."
        ]
        assert [row[0] for row in rows[1:-1]] == []
        # Shanghai's 31 January ends with the month: the balance there is known again.
        end = client.get("/admin/reports/balances/", {"facility": west.pk, "date": "2018-01-31"})
        assert end.context["notes"] == [] and len(end.context["rows"]) == 2
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS ledger_entry_p201801, ledger_entry_p201802")


def _archived_without_day_totals(month: dt.date) -> ArchivedJournalMonth:
    """A month archived before day totals were kept (its totals only)."""
    return archived_month(month, has_day_totals=False)


@pytest.mark.django_db
def test_a_month_archived_without_day_totals_is_said_on_its_reports_not_shown_as_nothing(client):
    east = FacilityFactory(code="east", timezone="Asia/Shanghai")
    west = FacilityFactory(code="west", timezone="Asia/Urumqi")
    client.force_login(_staff(AUDITOR, east, west))
    month = partitions.add_months(partitions.month_of(timezone.now()), -2)
    _archived_without_day_totals(month)
    last_day = partitions.add_months(month, 1) - dt.timedelta(days=1)

    fees = client.get("/admin/reports/fees/", {"facility": west.pk, "from": "2000-01-01"})
    # A Shanghai month touches Urumqi's days from the day before it began (its last two hours)
    # to its own last day (all but that day's last two hours).
    (note,) = fees.context["notes"]
    assert note.startswith(
        f"Not given for {month - dt.timedelta(days=1)} – {last_day}: the journal's entries"
    )
    assert note in page_text(fees)

    balances = client.get("/admin/reports/balances/", {"facility": east.pk, "date": f"{month}"})
    assert balances.context["rows"] == []
    assert f"entries of {month:%Y-%m} are archived" in balances.context["notes"][0]
    # The day before the month began is before the archived month: known (and empty).
    before = client.get(
        "/admin/reports/balances/",
        {"facility": east.pk, "date": f"{month - dt.timedelta(days=1)}"},
    )
    assert before.context["notes"] == []

    # The dashboard's 90 days reach the month: its days have no bar and the page says why.
    dashboard = client.get("/admin/reports/dashboard/", {"facility": east.pk, "days": 90})
    assert dashboard.context["sales_note"].startswith(
        f"The net sales above and in the chart leave out {month} – {last_day}: "
    )
    assert dashboard.context["sales_note"] in page_text(dashboard)
    sales, unknown = reports.sales_per_day(facility=east, days=90)
    assert unknown and all(amount is None for day, amount in sales if day in unknown)
    assert all(amount == 0 for day, amount in sales if day not in unknown)


@pytest.mark.django_db
def test_the_note_reads_in_chinese(client):
    east = FacilityFactory(code="east", timezone="Asia/Shanghai")
    client.force_login(_staff(AUDITOR, east))
    month = partitions.add_months(partitions.month_of(timezone.now()), -2)
    _archived_without_day_totals(month)
    page = client.get(
        "/admin/reports/fees/",
        {"facility": east.pk, "from": "2000-01-01"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    (note,) = page.context["notes"]
    assert "不予显示" in note and "已归档" in note
    balances = client.get(
        "/admin/reports/balances/",
        {"facility": east.pk, "date": f"{month}"},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "已归档" in balances.context["notes"][0]
    dashboard = client.get(
        "/admin/reports/dashboard/",
        {"facility": east.pk, "days": 90},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert dashboard.context["sales_note"].startswith("上方的净销售额和图表未计入")
