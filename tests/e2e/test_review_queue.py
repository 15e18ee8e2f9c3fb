"""The review queue in a real browser, in English and Chinese, on a phone (390 px) and a
desktop (1280 px): a security officer opens the deposits waiting for review, sees the rule that
held one, rejects it with a reason on the action's confirmation page, and the deposit is
refunded. Set REVIEW_QUEUE_SCREENSHOTS to a folder to keep a screenshot of each page."""

import os
from pathlib import Path

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from accounts.roles import SECURITY_OFFICER, assign_role
from ledger.models import Deposit
from monitoring.models import Hold, Rule
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.monitoring.helpers import paid, rule_at

from .conftest import TIMEOUT_MS

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

SHOTS = os.environ.get("REVIEW_QUEUE_SCREENSHOTS")
QUEUE = "/admin/monitoring/hold/?state__exact=pending"
RULE = {"en": "Monitored inmate (v1)", "zh-hans": "受监控的在押人员 (v1)"}


def _shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def _within(page, selector, width):
    box = page.locator(selector).first.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (selector, width, box)


@pytest.mark.parametrize("language", ("en", "zh-hans"))
def test_a_security_officer_rejects_a_held_deposit_with_a_reason(
    browser, live_server, sign_in, client, settings, language
):
    settings.PAYMENTS_SANDBOX = True
    cache.clear()
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility, surname="Zhang")
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, SECURITY_OFFICER)
    rule_at(facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    payments = [paid(client, inmate, amount) for amount in (1_000, 2_000)]
    assert Hold.objects.filter(state=Hold.State.PENDING).count() == 2

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, officer)
        context.add_cookies(
            [{"name": "django_language", "value": language, "url": live_server.url}]
        )
        for width, payment in zip((390, 1280), payments, strict=True):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(QUEUE)
            row = page.locator("#result_list tbody tr").first
            expect(row).to_contain_text(RULE[language])
            hold_pk = int(row.locator("input.action-select").get_attribute("value"))
            _shot(page, f"queue-{language}-{width}")
            row.locator("input.action-select").check()
            page.select_option("select[name=action]", "reject_selected")
            page.locator("button[name=index]").click()

            form = page.locator("#content form")
            expect(form.locator("input[name=reasons][value=potential_fraud]")).to_be_visible()
            expect(form.locator("table")).to_contain_text(RULE[language])
            _within(page, "#content form table", width)
            _within(page, "#content form textarea", width)
            _shot(page, f"reject-{language}-{width}")
            form.locator("input[name=reasons][value=potential_fraud]").check()
            form.locator("textarea[name=text]").fill("Report 2026/117")
            form.locator("input[type=submit]").click()
            expect(page.locator("ul.messagelist")).to_be_visible()
            _shot(page, f"rejected-{language}-{width}")

            hold = Hold.objects.get(pk=hold_pk)
            assert hold.deposit_id == payment.deposit_id
            assert (hold.state, hold.reasons, hold.reason_text, hold.decided_by_id) == (
                Hold.State.REJECTED,
                ["potential_fraud"],
                "Report 2026/117",
                officer.pk,
            )
            deposit = Deposit.objects.get(pk=payment.deposit_id)
            assert deposit.status == Deposit.Status.REFUNDED
        assert not Hold.objects.filter(state=Hold.State.PENDING).exists()
    finally:
        context.close()
