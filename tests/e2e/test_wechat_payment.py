"""A family deposit paid with WeChat Pay in Chromium: the confirm step offers the facility's
providers, the pay page shows the Native order's ``code_url`` as a QR code, and the local fake
WeChat Pay gateway (real RSA signatures, AES-256-GCM resource) completes the payment with a
signed callback to the live server; the deposit page then shows the receipt. Once at desktop
width (the QR code) and once at phone width (H5: sent to the gateway's page). Any
Content-Security-Policy violation fails the test."""

import os
import re
import uuid
from pathlib import Path

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from ledger.models import Account, Deposit
from payments.models import Payment
from payments.receipts import qr_data_uri
from tests.e2e.conftest import TIMEOUT_MS
from tests.factories import FacilityFactory, InmateFactory
from tests.payments.fake_gateways import FakeWechatPay
from tests.payments.helpers import PASSWORD, approved_link, depositor

pytestmark = pytest.mark.django_db(transaction=True)

# Where the browser tests leave screenshots for a person to look at (not committed).
SHOTS = os.environ.get("FAMILY_SCREENSHOTS")
WORDS = {
    "en": {
        "locale": "en-US",
        "check": "Check fee and total",
        "wechat": "WeChat Pay",
        "pay": "Pay ¥88.88",
        "see": "See the deposit",
        "receipt": "Receipt",
    },
    "zh-hans": {
        "locale": "zh-CN",
        "check": "查看手续费和总额",
        "wechat": "微信支付",
        "pay": "支付 ¥88.88",
        "see": "查看汇款",
        "receipt": "收据",
    },
}
PHONE_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def wechat_site(settings, live_server, httpserver):
    gateway = FakeWechatPay(httpserver)
    settings.PAYMENTS_SANDBOX = True  # offered too, so the family has a choice to make
    settings.PAYMENTS_WECHAT = gateway.account()
    settings.SITE_URL = live_server.url
    cache.clear()
    yield live_server, gateway
    cache.clear()


def _shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def _family_page(browser, site, *, width=1280, user_agent=None, language="en"):
    options = {
        "base_url": site.url,
        "locale": WORDS[language]["locale"],
        "viewport": {"width": width, "height": 900},
    }
    if user_agent:
        options["user_agent"] = user_agent
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return context, page, violations


def _start_wechat_deposit(page, user, link, words=WORDS["en"]):
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(user.email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.goto(f"/family/links/{link.pk}/deposit")
    page.locator("input[name=amount]").fill("88.88")
    page.get_by_role("button", name=words["check"]).click()
    expect(page.locator("#total")).to_have_text("¥88.88")
    page.get_by_label(words["wechat"]).check()
    _shot(page, f"wechat-{page.viewport_size['width']}-1-confirm")
    page.get_by_role("button", name=words["pay"]).click()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_wechat_native_qr_code_paid_through_the_fake_gateway(browser, wechat_site, language):
    words = WORDS[language]
    site, gateway = wechat_site
    facility = FacilityFactory(name="Beijing No. 2", links_need_approval=False)
    inmate = InmateFactory(facility=facility)
    user = depositor()
    link = approved_link(user, inmate)
    context, page, violations = _family_page(browser, site, language=language)
    try:
        _start_wechat_deposit(page, user, link, words)

        qr = page.locator("#wechat-qr")
        expect(qr).to_be_visible()
        assert page.evaluate("document.querySelector('#wechat-qr').naturalWidth") > 0
        _shot(page, f"wechat-1280-2-qr-{language}")
        deposit = Deposit.objects.get(inmate=inmate)
        trade = gateway.trades[deposit.reference.hex]
        assert trade.kind == "native" and trade.total == 8_888
        # The code shown is the order's code_url, drawn as a QR code.
        code_url = f"weixin://wxpay/bizpayurl?pr={trade.transaction_id}"
        assert qr.get_attribute("src") == qr_data_uri(code_url)
        assert deposit.status == Deposit.Status.CREATED

        # The family scans and pays; WeChat Pay's server notifies the site.
        gateway.pay(trade.out_trade_no)
        assert gateway.send_notification(f"{site.url}/payments/wechat/callback", trade) == 204

        page.get_by_role("link", name=words["see"]).click()
        expect(page.get_by_role("heading", name=words["receipt"])).to_be_visible()
        expect(page.locator("#receipt-amount")).to_have_text("¥88.88")
        _shot(page, f"wechat-1280-3-receipt-{language}")
    finally:
        context.close()

    deposit.refresh_from_db()
    assert deposit.status == Deposit.Status.CREDITED
    assert Payment.objects.get(deposit=deposit).status == Payment.Status.SETTLED
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 8_888
    assert violations == []


def test_wechat_h5_on_a_phone_goes_to_the_gateways_page(browser, wechat_site):
    site, gateway = wechat_site
    inmate = InmateFactory(facility=FacilityFactory(links_need_approval=False))
    user = depositor()
    link = approved_link(user, inmate)
    context, page, violations = _family_page(browser, site, width=390, user_agent=PHONE_AGENT)
    # The gateway's H5 page is not served by the fake; only where the browser is sent matters.
    page.route(
        re.compile(r".*/h5/.*"),
        lambda route: route.fulfill(body="WeChat H5 cashier", content_type="text/html"),
    )
    try:
        _start_wechat_deposit(page, user, link)
        expect(page.get_by_text("WeChat H5 cashier")).to_be_visible()
        deposit = Deposit.objects.get(inmate=inmate)
        assert page.url.startswith(f"{gateway.gateway}/h5/")
        assert "redirect_url=" in page.url
    finally:
        context.close()
    trade = gateway.trades[uuid.UUID(str(deposit.reference)).hex]
    assert trade.kind == "h5"
    assert violations == []
