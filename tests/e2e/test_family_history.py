"""The family's list of deposits on a phone, in Chromium: a narrow screen moves the time below
the date but never breaks a date inside itself ("2026-12-" above "05"), and the longest state
still fits. In both languages, at 390 pixels and on a desktop, with
no horizontal scrolling."""

import re

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from ledger.models import Deposit
from payments import services
from tests.e2e.conftest import TIMEOUT_MS
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit, key
from tests.payments.helpers import PASSWORD, approved_link, depositor

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = {
    "en": {"locale": "en-US", "states": ["Being reviewed", "Pending"]},
    "zh-hans": {"locale": "zh-CN", "states": ["审核中", "待付款"]},
}

# How many lines the cell's date (YYYY-MM-DD) takes: a text range's rectangles, one a line.
DATE_LINES = """cell => {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const found = /\\d{4}-\\d{2}-\\d{2}/.exec(node.data);
        if (found) {
            const range = document.createRange();
            range.setStart(node, found.index);
            range.setEnd(node, found.index + found[0].length);
            return range.getClientRects().length;
        }
    }
    return 0;
}"""

LINES = """element => {
    const range = document.createRange();
    range.selectNodeContents(element);
    return range.getClientRects().length;
}"""


@pytest.fixture
def family_site(settings, live_server):
    settings.PAYMENTS_SANDBOX = True
    settings.SITE_URL = live_server.url
    cache.clear()
    yield live_server
    cache.clear()


@pytest.mark.parametrize("width", [390, 1280], ids=["phone", "desktop"])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_history_keeps_each_date_whole_and_fits_a_phone(browser, family_site, language, width):
    words = WORDS[language]
    user = depositor()
    inmate = InmateFactory(facility=FacilityFactory(name="Demo Prison 示范监狱"), surname="孙")
    link = approved_link(user, inmate)
    deposit(inmate, 2_000)  # credited, not by this depositor: not in the list
    reserved = [
        services.start_deposit(
            depositor=user, link_id=link.pk, amount_fen=1_250, idempotency_key=key()
        )[0]
        for _ in range(2)
    ]
    # The longest state a family reads: paid, and held for the facility's review.
    Deposit.objects.filter(pk=reserved[1].pk).update(status=Deposit.Status.HELD)
    context = browser.new_context(
        base_url=family_site.url, locale=words["locale"], viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto("/accounts/login/")
        page.locator("input[name=login]").fill(user.email)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("main form button[type=submit]").click()
        page.goto("/family/deposits/")
        expect(page.locator("table.history .state")).to_have_text(words["states"])
        cells = page.locator("table.history tbody td:first-child")
        expect(cells).to_have_count(2)
        for index in range(2):
            assert re.search(r"\d{4}-\d{2}-\d{2}", cells.nth(index).inner_text())
            assert cells.nth(index).evaluate(DATE_LINES) == 1
        # A state in Chinese is never broken inside its word (已入 above 账).
        if language == "zh-hans":
            for state in page.locator("table.history .state").all():
                assert state.evaluate(LINES) == 1
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()
