"""The fair commissary in a real browser, in English and in Chinese, at a phone's width and a
desk's: the public price list and a product's history, signed out; the disputes queue; and a
dispute's life (filed at the kiosk, decided by a clerk with a partial refund, the answer back at
the kiosk). Set SCREENSHOT_DIR to keep a screenshot of each page."""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from catalog.models import Dispute, FacilityProduct
from catalog.services import disputes, prices
from ledger.selectors import inmate_balance
from tests.admin.conftest import make_site
from tests.catalog.disputes_helpers import delivered_order
from tests.catalog.helpers import product_at
from tests.kiosk.conftest import Kiosk

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


def _switch_admin_language(page: Page, language: str) -> None:
    page.locator("#language-choice").select_option(value=language)
    page.locator("form.language-switcher button").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_public_price_list_and_a_product_history(page, language, width):
    site = make_site("north")
    tea = product_at(
        site.facility,
        price_fen=350,
        name_zh="绿茶",
        name_en="Green tea",
        unit_zh="瓶",
        unit_en="bottle",
        stock=4321,
    )
    product_at(site.facility, price_fen=450, name_zh="方便面", name_en="Instant noodles")
    offer = FacilityProduct.objects.get(product=tea)
    for price_fen in (300, 380):
        prices.file_price_change(
            facility_product_id=offer.pk,
            cost_fen=250,
            price_fen=price_fen,
            reason="Supplier",
            staff_id=site.staff["clerk"].pk,
        )
    page.set_viewport_size({"width": WIDTHS[width], "height": 800})
    page.goto("/prices/north/")
    page.locator("#language-select").select_option(value=language)
    page.locator("form.language button").click()
    expect(page.locator("html")).to_have_attribute(
        "lang", "zh-Hans" if language == "zh-hans" else "en"
    )
    name = "绿茶" if language == "zh-hans" else "Green tea"
    expect(page.locator("table.prices")).to_contain_text(name)
    expect(page.locator("table.prices")).to_contain_text("¥3.00")
    expect(page.locator("table.prices .next")).to_contain_text("¥3.80")
    assert "4321" not in page.content()
    # The table fits the phone: nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS[width]
    _shoot(page, f"prices-list-{language}-{width}")
    page.get_by_role("link", name=name).click()
    expect(page.locator("table.history tbody tr")).to_have_count(2)
    _shoot(page, f"prices-history-{language}-{width}")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_dispute_s_life_from_the_kiosk_to_the_queue_and_back(page, sign_in, language, width):
    site = make_site("east")
    delivered_at = timezone.now() - dt.timedelta(days=2)
    order, line, inmate, device, _ = delivered_order(
        delivered_at=delivered_at, facility=site.facility
    )
    kiosk = Kiosk(site.facility)
    kiosk.sign_in(inmate)
    filed = kiosk.post(
        f"orders/{order.pk}/disputes",
        {"line": line.pk, "reason": "missing", "text": "少了一包 One packet missing"},
        headers={"Idempotency-Key": "e2e-1"},
    )
    assert filed.status_code == 201, filed.content
    before = inmate_balance(inmate=inmate).spendable_fen

    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    sign_in(page, site.staff["clerk"])
    _switch_admin_language(page, language)
    page.goto("/admin/catalog/dispute/?status__exact=open")
    expect(page.locator("#result_list")).to_contain_text(inmate.inmate_number)
    _shoot(page, f"disputes-queue-{language}-{width}")
    page.locator("#result_list tbody th a").first.click()
    expect(page.locator(".dispute-context")).to_contain_text("¥13.50")
    _shoot(page, f"dispute-detail-{language}-{width}")
    page.locator("input[name='decision'][value='refund']").check()
    page.locator("#id_refund").fill("4.50")
    page.locator("#id_answer").fill("补一包的钱 Refunded one packet")
    page.locator(".dispute-decision input[type='submit']").click()
    expect(page.locator("ul.messagelist")).to_be_visible()
    _shoot(page, f"dispute-decided-{language}-{width}")

    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.refund_fen) == ("refunded", 450)
    assert inmate_balance(inmate=inmate).spendable_fen == before + 450
    shown = kiosk.get(f"orders/{order.pk}").json()["disputes"][0]
    assert (shown["status"], shown["answer"]) == ("refunded", "补一包的钱 Refunded one packet")
    assert disputes.escalate_overdue_disputes() == []
