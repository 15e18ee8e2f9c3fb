"""The family's whole flow in Chromium: sign up, verify the email (read from the test outbox),
link to an inmate, see a refused over-cap amount, deposit, pay on the sandbox page (which sends
a real signed HTTP callback to the live server), get a receipt with its QR code, and confirm it
at the verification URL. Once in each language, and once at a phone's 390-pixel width. Any
Content-Security-Policy violation fails the test."""

import os
import re
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache
from playwright.sync_api import expect

from ledger.models import Account, Deposit
from payments.models import Payment
from tests.e2e.conftest import TIMEOUT_MS
from tests.factories import FacilityFactory, InmateFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a long family passphrase"
# Where the browser tests leave screenshots for a person to look at (not committed).
SHOTS = os.environ.get("FAMILY_SCREENSHOTS")

WORDS = {
    "en": {
        "locale": "en-US",
        "link": "Link to a person",
        "send": "Send money",
        "check": "Check fee and total",
        "over": "The most that can be sent now is ¥1,000.00.",
        "fee": "No fee",
        "pay_button": "Pay ¥123.45",
        "sandbox_pay": "Pay",
        "receipt": "Receipt",
        "genuine": "Genuine: this is a credited deposit.",
    },
    "zh-hans": {
        "locale": "zh-CN",
        "link": "关联收款人",
        "send": "汇款",
        "check": "查看手续费和总额",
        "over": "目前最多可汇 ¥1,000.00。",
        "fee": "免手续费",
        "pay_button": "支付 ¥123.45",
        "sandbox_pay": "付款",
        "receipt": "收据",
        "genuine": "真实有效：这是一笔已入账的汇款。",
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


@pytest.mark.parametrize(
    ("language", "width"),
    [("en", 1280), ("zh-hans", 1280), ("zh-hans", 390)],
    ids=["english-desktop", "chinese-desktop", "chinese-phone"],
)
def test_sign_up_link_deposit_pay_and_verify_the_receipt(
    browser, family_site, language, width, queued_receipts
):
    words = WORDS[language]
    facility = FacilityFactory(name="Beijing No. 2", links_need_approval=False)
    inmate = InmateFactory(facility=facility, surname="Zhang", inmate_number="B2-0042")
    context = browser.new_context(
        base_url=family_site.url,
        locale=words["locale"],
        viewport={"width": width, "height": 900},
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
    tag = f"{language}-{width}"
    try:
        page.goto("/")
        _shot(page, f"{tag}-1-home")
        page.goto("/accounts/signup/")
        page.locator("input[name=email]").fill("parent@example.com")
        page.locator("input[name=password1]").fill(PASSWORD)
        page.locator("input[name=password2]").fill(PASSWORD)
        _shot(page, f"{tag}-0-signup")
        page.locator("form button[type=submit]").last.click()

        # The verification email, as the console backend would print it.
        confirm = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body)
        page.goto(confirm.group(0))
        page.locator("main form button[type=submit]").click()
        page.goto("/accounts/login/")
        page.locator("input[name=login]").fill("parent@example.com")
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("main form button[type=submit]").click()

        page.get_by_role("link", name=words["link"]).click()
        page.locator("select[name=facility]").select_option(label="Beijing No. 2")
        page.locator("input[name=inmate_number]").fill("B2-0042")
        page.locator("input[name=surname]").fill("Zhang")
        _shot(page, f"{tag}-2-link")
        page.locator("main form button[type=submit]").click()
        _shot(page, f"{tag}-3-linked")
        page.get_by_role("link", name=words["send"], exact=True).click()
        expect(page.locator("#can-send")).to_have_text("¥1,000.00")

        # Over the room: refused with the most that can be sent, nothing reserved.
        page.locator("input[name=amount]").fill("1000.01")
        page.get_by_role("button", name=words["check"]).click()
        expect(page.get_by_text(words["over"])).to_be_visible()
        _shot(page, f"{tag}-4-over")
        assert not Deposit.objects.exists()

        page.locator("input[name=amount]").fill("123.45")
        page.get_by_role("button", name=words["check"]).click()
        expect(page.locator("#fee")).to_have_text(words["fee"])
        expect(page.locator("#total")).to_have_text("¥123.45")
        _shot(page, f"{tag}-5-confirm")
        page.get_by_role("button", name=words["pay_button"]).click()

        expect(page.locator(".sandbox-banner")).to_be_visible()
        _shot(page, f"{tag}-6-sandbox")
        page.get_by_role("button", name=words["sandbox_pay"], exact=True).click()

        expect(page.get_by_role("heading", name=words["receipt"])).to_be_visible()
        expect(page.locator("#receipt-amount")).to_have_text("¥123.45")
        qr = page.get_by_role("img")
        expect(qr).to_have_attribute("src", re.compile(r"^data:image/svg\+xml;base64,"))
        assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 0
        _shot(page, f"{tag}-7-receipt")
        verify_url = page.locator("#verify-url").get_attribute("href")
        deposit = Deposit.objects.get(inmate=inmate)
        assert verify_url == f"{family_site.url}/receipts/{deposit.reference}/verify"

        page.goto(verify_url)
        expect(page.locator("#verdict")).to_have_text(words["genuine"])
        _shot(page, f"{tag}-8-verify")
    finally:
        context.close()

    assert deposit.status == Deposit.Status.CREDITED and deposit.amount_fen == 12_345
    assert Payment.objects.get(deposit=deposit).status == Payment.Status.SETTLED
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    assert spendable.balance_fen == 12_345
    # The callback queued the receipt email and sent nothing; the task, run as a worker runs
    # it, sends it.
    assert queued_receipts == [{"payment_id": Payment.objects.get(deposit=deposit).pk}]
    assert not any("parent@example.com" in message.to for message in mail.outbox[1:])
    assert queued_receipts.run() == [True]
    assert any("parent@example.com" in message.to for message in mail.outbox[1:])
    assert violations == []
