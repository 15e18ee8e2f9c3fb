"""Commissary policy in a real browser: a facility administrator declares a festival month with
the month picker and gives a grade its festival limit in yuan; a commissary clerk reads the
inmates' refused orders; both in English and in Chinese, at a phone's width and a desk's.
Set SCREENSHOT_DIR to keep a screenshot of each page."""

import os
from pathlib import Path

import pytest
from django.utils import translation
from playwright.sync_api import Page, expect

from catalog.models import RefusedOrder
from commissary import errors
from facilities.models import FestivalMonth, Grade
from tests.admin.conftest import make_site
from tests.catalog.helpers import grade_at, order_from_kiosk, unfunded_shop

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

WIDTHS = {"phone": 390, "desk": 1280}


def _shoot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _switch_language(page: Page, language: str) -> None:
    page.locator("#language-choice").select_option(value=language)
    page.locator("form.language-switcher button").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_facility_administrator_declares_a_festival_month_and_its_limit(
    page, sign_in, language, width
):
    site = make_site("fest")
    grade = grade_at(site.facility, limit_fen=40_000, name="Grade A")
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    sign_in(page, site.staff["facility_admin"])
    _switch_language(page, language)

    page.goto("/admin/facilities/festivalmonth/add/")
    page.locator("#id_facility").select_option(value=str(site.facility.pk))
    page.locator("#id_month").fill("2027-02")
    page.locator("#id_name").fill("春节")
    _shoot(page, f"festival-month-add-{language}-{width}")
    page.locator("input[name='_save']").click()
    expect(page.locator("#result_list")).to_contain_text("春节")
    _shoot(page, f"festival-month-list-{language}-{width}")
    assert FestivalMonth.objects.get().month.isoformat() == "2027-02-01"

    page.goto(f"/admin/facilities/grade/{grade.pk}/change/")
    page.locator("#id_festival_spending_limit").fill("600.50")
    _shoot(page, f"grade-change-{language}-{width}")
    page.locator("input[name='_save']").click()
    expect(page.locator(".messagelist")).to_be_visible()
    grade.refresh_from_db()
    assert grade.festival_spending_limit_fen == 60_050

    page.goto(f"/admin/facilities/grade/{grade.pk}/change/")
    page.locator("#id_festival_spending_limit").fill("300")  # below the usual 400 yuan
    page.locator("input[name='_save']").click()
    expect(page.locator(".errorlist")).to_be_visible()
    _shoot(page, f"grade-refused-{language}-{width}")
    assert Grade.objects.get(pk=grade.pk).festival_spending_limit_fen == 60_050


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_clerk_reads_the_refused_orders_of_the_facility(page, sign_in, language, width):
    site = make_site("refu")
    inmate, device, product = unfunded_shop(site.facility)
    with pytest.raises(errors.InsufficientFunds):
        order_from_kiosk(inmate, device, product, "too-poor")
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    sign_in(page, site.staff["clerk"])
    _switch_language(page, language)

    page.goto("/admin/catalog/refusedorder/")
    expect(page.locator("#result_list")).to_contain_text(site.inmate.inmate_number)
    _shoot(page, f"refused-orders-{language}-{width}")
    refused = RefusedOrder.objects.get()
    page.goto(f"/admin/catalog/refusedorder/{refused.pk}/change/")
    with translation.override(language):
        reason = str(refused.get_code_display())
    expect(page.locator("#content")).to_contain_text(reason)
    expect(page.locator("input[name='_save']")).to_have_count(0)
    _shoot(page, f"refused-order-{language}-{width}")
