"""A payment cancelled on the sandbox payment page, in Chromium: the deposit's page says it was
cancelled and no money was taken (not "the payment did not go through"), and "Try again" opens
the deposit form for the same inmate with the same amount filled in. In both languages, on a
desktop and at a phone's 390-pixel width, with no horizontal scrolling and no
Content-Security-Policy violation."""

import os
from pathlib import Path

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from ledger.models import Account, Deposit
from payments.models import Payment
from tests.e2e.conftest import TIMEOUT_MS
from tests.factories import FacilityFactory, InmateFactory
from tests.payments.helpers import PASSWORD, approved_link, depositor

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = os.environ.get("FAMILY_SCREENSHOTS")

WORDS = {
    "en": {
        "locale": "en-US",
        "check": "Check fee and total",
        "pay_button": "Pay ¥123.45",
        "cancel": "Cancel",
        "state": "Cancelled",
        "said": "You cancelled this payment. No money was taken, and nothing was credited.",
        "retry": "Try again",
        "failure": "did not go through",
    },
    "zh-hans": {
        "locale": "zh-CN",
        "check": "查看手续费和总额",
        "pay_button": "支付 ¥123.45",
        "cancel": "取消",
        "state": "已取消",
        "said": "您已取消这笔付款。没有扣款，也没有入账。",
        "retry": "重新汇款",
        "failure": "付款未成功",
    },
}


@pytest.fixture
def family_site(settings, live_server):
    settings.PAYMENTS_SANDBOX = True
    settings.SITE_URL = live_server.url
    cache.clear()
    yield live_server
    cache.clear()


def _shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def _fits(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", [390, 1280], ids=["phone", "desktop"])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_cancelled_payment_says_so_and_offers_to_try_again(browser, family_site, language, width):
    words = WORDS[language]
    user = depositor()
    inmate = InmateFactory(facility=FacilityFactory(name="Beijing No. 2"), surname="Zhang")
    link = approved_link(user, inmate)
    context = browser.new_context(
        base_url=family_site.url, locale=words["locale"], viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    tag = f"cancelled-{language}-{width}"
    try:
        page.goto("/accounts/login/")
        page.locator("input[name=login]").fill(user.email)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("main form button[type=submit]").click()
        page.goto(f"/family/links/{link.pk}/deposit")
        page.locator("input[name=amount]").fill("123.45")
        page.get_by_role("button", name=words["check"]).click()
        page.get_by_role("button", name=words["pay_button"]).click()
        expect(page.locator(".sandbox-banner")).to_be_visible()
        page.get_by_role("button", name=words["cancel"], exact=True).click()

        expect(page.locator(".state")).to_have_text(words["state"])
        expect(page.get_by_text(words["said"])).to_be_visible()
        expect(page.get_by_text(words["failure"])).to_have_count(0)
        _fits(page, width)
        _shot(page, f"{tag}-1-deposit")

        page.get_by_role("link", name=words["retry"]).click()
        expect(page.locator("input[name=amount]")).to_have_value("123.45")
        _fits(page, width)
        _shot(page, f"{tag}-2-form")

        page.goto("/family/deposits/")
        expect(page.locator("table.history .state")).to_have_text(words["state"])
        _fits(page, width)
        _shot(page, f"{tag}-3-history")
    finally:
        context.close()

    deposit = Deposit.objects.get(inmate=inmate)
    assert deposit.status == Deposit.Status.FAILED
    assert Payment.objects.get(deposit=deposit).status == Payment.Status.CANCELLED
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    assert (spendable.balance_fen, spendable.pending_fen) == (0, 0)
    assert violations == []
