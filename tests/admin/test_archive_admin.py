"""The archived months of the journal in the admin, with the account and day totals their
detach kept: read-only for everyone, the totals scoped to the staff member's facilities,
amounts in yuan, times in the facility's."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from accounts.roles import AUDITOR, assign_role
from ledger.models import (
    Account,
    ArchivedAccountTotal,
    ArchivedDayTotal,
    ArchivedJournalMonth,
)
from tests.factories import FacilityFactory, StaffFactory
from tests.ledger.helpers import archived_month

pytestmark = pytest.mark.django_db

MONTHS = "/admin/ledger/archivedjournalmonth/"
ACCOUNT_TOTALS = "/admin/ledger/archivedaccounttotal/"
DAY_TOTALS = "/admin/ledger/archiveddaytotal/"
SHANGHAI = ZoneInfo("Asia/Shanghai")
JANUARY = dt.date(2018, 1, 1)
# 17:30 UTC: 01:30 on 11 February in Shanghai, 23:30 on the 10th in Urumqi.
DETACHED_AT = dt.datetime(2018, 2, 10, 17, 30, tzinfo=dt.UTC)


def _month(month: dt.date, *, entry_count: int, has_day_totals: bool = True):
    return archived_month(
        month,
        entry_count=entry_count,
        has_day_totals=has_day_totals,
        detached_at=DETACHED_AT,
        detached_by="ops",
    )


def _day_total(month, account, day: dt.date, amount_fen: int):
    starts_at = dt.datetime.combine(day, dt.time(), SHANGHAI)
    return ArchivedDayTotal.objects.create(
        archived_month=month,
        account=account,
        day=day,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(days=1),
        amount_fen=amount_fen,
    )


def _accounts(site):
    spendable = Account.objects.get(inmate=site.inmate, kind=Account.Kind.SPENDABLE)
    sales = Account.objects.get(facility=site.facility, inmate=None, kind=Account.Kind.SALES)
    return spendable, sales


@pytest.fixture
def january(site_a, site_b):
    """January 2018 archived with day totals: facility A's inmate got ¥123.45 and its sales
    ¥3.45 went the other way; facility B's inmate got ¥999.99."""
    month = _month(JANUARY, entry_count=1_234_567)
    a_inmate, a_sales = _accounts(site_a)
    b_inmate, _b_sales = _accounts(site_b)
    for account, amount_fen in ((a_inmate, 12_345), (a_sales, -345), (b_inmate, 99_999)):
        ArchivedAccountTotal.objects.create(
            archived_month=month, account=account, amount_fen=amount_fen
        )
    _day_total(month, a_inmate, dt.date(2018, 1, 5), 12_345)
    _day_total(month, a_sales, dt.date(2018, 1, 6), -345)
    _day_total(month, b_inmate, dt.date(2018, 1, 7), 99_999)
    return month


def _text(client, url, **params):
    page = client.get(url, params, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    return page.content.decode()


@pytest.mark.parametrize("role", ["trust_officer", "auditor", "facility_admin"])
def test_the_archived_months_render_for_the_roles_that_view_the_ledger(
    client, site_a, january, role
):
    client.force_login(site_a.staff[role])
    months = _text(client, MONTHS)
    assert "2018-01" in months
    assert "1,234,567" in months  # the whole journal's entries of the month
    assert "Entries (whole journal)" in months
    assert "Detached by" in months and '<td class="field-detached_by">ops</td>' in months
    # Links to the month's totals this staff member may see: facility A's two accounts.
    assert f"{ACCOUNT_TOTALS}?archived_month__id__exact={january.pk}" in months
    assert "2 account totals" in months
    assert f"{DAY_TOTALS}?archived_month__id__exact={january.pk}" in months
    assert "2 day totals" in months
    # The month's own page, read-only, with the same links.
    month_page = _text(client, f"{MONTHS}{january.pk}/change/")
    assert "2 account totals" in month_page and "ledger_entry_p201801" in month_page
    assert 'name="_save"' not in month_page
    # The month as a month, not as the date of its first day.
    assert "Jan. 1, 2018<" not in month_page


@pytest.mark.parametrize("role", ["trust_officer", "auditor"])
def test_account_and_day_totals_show_in_yuan_and_only_the_staff_members_facilities(
    client, site_a, site_b, january, role
):
    client.force_login(site_a.staff[role])
    a_number, b_number = site_a.inmate.inmate_number, site_b.inmate.inmate_number
    for url in (ACCOUNT_TOTALS, DAY_TOTALS):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
        assert page.status_code == 200
        shown = page.content.decode()
        assert page.context["cl"].result_count == 2
        assert f"{a_number} Inmate spendable" in shown
        assert "System account: Commissary sales" in shown
        assert "¥123.45" in shown and "-¥3.45" in shown
        assert "12345" not in shown  # never the stored fen
        # Facility B's total, inmate and name appear nowhere, filters included.
        assert b_number not in shown and "¥999.99" not in shown
        assert "Prison bravo" not in shown
    # Its rows answer as missing ones do.
    b_total = ArchivedAccountTotal.objects.get(account__facility=site_b.facility)
    b_day = ArchivedDayTotal.objects.get(account__facility=site_b.facility)
    assert client.get(f"{ACCOUNT_TOTALS}{b_total.pk}/change/").status_code == 404
    assert client.get(f"{DAY_TOTALS}{b_day.pk}/change/").status_code == 404
    # A search for B's inmate finds nothing.
    assert client.get(ACCOUNT_TOTALS, {"q": b_number}).context["cl"].result_count == 0


def test_the_page_of_a_total_shows_its_amount_in_yuan(client, site_a, january):
    client.force_login(site_a.staff["auditor"])
    total = ArchivedAccountTotal.objects.get(account__inmate=site_a.inmate)
    page = _text(client, f"{ACCOUNT_TOTALS}{total.pk}/change/")
    assert "¥123.45" in page and "12345" not in page
    day = ArchivedDayTotal.objects.get(account__inmate=site_a.inmate)
    page = _text(client, f"{DAY_TOTALS}{day.pk}/change/")
    assert "¥123.45" in page and "12345" not in page


def test_a_superuser_sees_every_facilitys_totals(client, site_a, site_b, january):
    client.force_login(StaffFactory(is_superuser=True))
    assert client.get(ACCOUNT_TOTALS).context["cl"].result_count == 3
    assert client.get(DAY_TOTALS).context["cl"].result_count == 3
    assert "3 account totals" in _text(client, MONTHS)


def test_the_month_links_list_only_that_months_totals(client, site_a, january):
    february = _month(dt.date(2018, 2, 1), entry_count=10)
    spendable, _sales = _accounts(site_a)
    ArchivedAccountTotal.objects.create(archived_month=february, account=spendable, amount_fen=1)
    client.force_login(site_a.staff["auditor"])
    assert client.get(ACCOUNT_TOTALS).context["cl"].result_count == 3
    for month, count in ((january, 2), (february, 1)):
        listed = client.get(ACCOUNT_TOTALS, {"archived_month__id__exact": month.pk})
        assert listed.context["cl"].result_count == count
    assert "1 account total<" in _text(client, MONTHS)


def test_a_month_detached_before_day_totals_were_kept_says_so(client, site_a):
    _month(dt.date(2017, 6, 1), entry_count=5, has_day_totals=False)
    client.force_login(site_a.staff["auditor"])
    months = _text(client, MONTHS)
    assert (
        "day totals not kept" in months and f"{DAY_TOTALS}?archived_month__id__exact=" not in months
    )


def test_staff_without_the_ledgers_view_see_none_of_it(client, site_a, january):
    client.force_login(site_a.staff["clerk"])
    for url in (MONTHS, ACCOUNT_TOTALS, DAY_TOTALS):
        assert client.get(url).status_code == 403


@pytest.mark.parametrize("who", ["superuser", "trust_officer", "facility_admin"])
def test_nobody_adds_changes_or_deletes_an_archived_row(client, site_a, january, who):
    user = StaffFactory(is_superuser=True) if who == "superuser" else site_a.staff[who]
    client.force_login(user)
    total = ArchivedAccountTotal.objects.get(account__inmate=site_a.inmate)
    day = ArchivedDayTotal.objects.get(account__inmate=site_a.inmate)
    for url, pk in ((MONTHS, january.pk), (ACCOUNT_TOTALS, total.pk), (DAY_TOTALS, day.pk)):
        assert client.get(f"{url}add/").status_code == 403
        assert client.post(f"{url}add/", {}).status_code == 403
        assert client.post(f"{url}{pk}/change/", {"amount_fen": "1"}).status_code == 403
        assert client.get(f"{url}{pk}/delete/").status_code == 403
        assert client.post(f"{url}{pk}/delete/", {"post": "yes"}).status_code == 403
        listed = client.get(url)
        assert listed.context["has_add_permission"] is False
        assert "delete_selected" not in listed.content.decode()
    total.refresh_from_db()
    assert total.amount_fen == 12_345
    assert ArchivedJournalMonth.objects.count() == 1


def test_the_detach_time_is_the_facilitys_local_time(client):
    urumqi = FacilityFactory(code="west", timezone="Asia/Urumqi")
    shanghai = FacilityFactory(code="east", timezone="Asia/Shanghai")
    _month(JANUARY, entry_count=1)
    for facility, shown in (
        (urumqi, "Feb. 10, 2018, 11:30 p.m."),
        (shanghai, "Feb. 11, 2018, 1:30 a.m."),
    ):
        auditor = StaffFactory(facilities=[facility])
        assign_role(auditor, AUDITOR)
        client.force_login(auditor)
        assert shown in _text(client, MONTHS)


def test_the_pages_read_in_chinese(client, site_a, january):
    client.force_login(site_a.staff["trust_officer"])
    months = client.get(MONTHS, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "已归档的日记账月份" in months
    assert "分录数（整个日记账）" in months
    assert "2 条账户合计" in months and "2 条每日合计" in months
    totals = client.get(ACCOUNT_TOTALS, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "系统账户：小卖部销售" in totals
    assert f"{site_a.inmate.inmate_number} 在押人员可用资金" in totals
    assert "¥123.45" in totals
    older = _month(dt.date(2017, 6, 1), entry_count=5, has_day_totals=False)
    months = client.get(MONTHS, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert older.table_name in client.get(f"{MONTHS}{older.pk}/change/").content.decode()
    assert "未保存每日合计" in months
