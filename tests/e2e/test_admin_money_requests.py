"""A money request in a real browser, in both languages, on a phone and a desktop: the trust
officer finds the inmate by typing (autocomplete, not a select of every inmate), a debit larger
than the balance is refused at the preview with no way to confirm it, a debit above the
threshold is filed and waits, the requester withdraws it, files it again, and a second trust
officer approves it. Set SCREENSHOT_DIR to keep a screenshot of each step for a person to look
at."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ledger.models import StaffRequest, Transaction
from ledger.selectors import inmate_balance
from tests.admin.conftest import make_site
from tests.e2e.conftest import TIMEOUT_MS, _sign_in
from tests.ledger.helpers import deposit

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"money-request-{name}.png"), full_page=True)


def use_language(page: Page, base_url: str, language: str) -> None:
    page.context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])


def sign_in_as(page: Page, base_url: str, user, language: str) -> None:
    page.context.clear_cookies()
    _sign_in(page, user)  # the sign-in form in the browser's own language (English)
    use_language(page, base_url, language)


def choose_inmate(page: Page, inmate) -> None:
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill(inmate.inmate_number)
    page.locator(".select2-results__option", has_text=inmate.inmate_number).click()


def fill_debit(page: Page, inmate, amount: str) -> None:
    page.goto("/admin/ledger/staffrequest/add/")
    choose_inmate(page, inmate)
    page.locator("select[name=kind]").select_option("debit")
    page.locator("input[name=amount]").fill(amount)
    page.locator("textarea[name=reason]").fill("Damaged a mattress")
    page.locator("input[name=preview]").click()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("width", [390, 1280])
def test_file_refuse_withdraw_and_approve_a_money_request(browser, live_server, language, width):
    site = make_site(f"w{width}")
    deposit(site.inmate, 100_000)  # ¥1,000.00; the threshold is ¥500.00
    requester, approver = site.staff["trust_officer"], site.staff["trust_officer_2"]
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    name = f"{language}-{width}"
    try:
        sign_in_as(page, live_server.url, requester, language)

        # Impossible: refused at the preview, with the approver's words and no Confirm.
        fill_debit(page, site.inmate, "5,000.00")
        expect(page.locator("table.preview")).to_contain_text("4,000.00")
        expect(page.locator(".errorlist")).to_contain_text(
            "spendable balance is too low" if language == "en" else "可用余额不足"
        )
        expect(page.locator("input[name=confirm]")).to_have_count(0)
        shot(page, f"{name}-1-refused")
        assert not StaffRequest.objects.exists()

        # Above the threshold: filed, waiting.
        fill_debit(page, site.inmate, "600.00")
        expect(page.locator(".approval-note")).to_be_visible()
        shot(page, f"{name}-2-preview")
        page.locator("input[name=confirm]").click()
        first = StaffRequest.objects.get()
        assert first.state == StaffRequest.State.REQUESTED
        shot(page, f"{name}-3-waiting")

        # Withdrawn by the requester, after a confirmation page.
        page.locator("a.withdraw-link").click()
        expect(page.locator(".withdraw-list")).to_contain_text(f"#{first.pk}")
        shot(page, f"{name}-4-withdraw-confirmation")
        page.locator("input[name=confirm_withdraw]").click()
        first.refresh_from_db()
        assert first.state == StaffRequest.State.WITHDRAWN
        expect(page.locator("a.withdraw-link")).to_have_count(0)
        shot(page, f"{name}-5-withdrawn")

        # Filed again, and approved by a second trust officer.
        fill_debit(page, site.inmate, "600.00")
        page.locator("input[name=confirm]").click()
        second = StaffRequest.objects.exclude(pk=first.pk).get()
        sign_in_as(page, live_server.url, approver, language)
        page.goto(f"/admin/ledger/staffrequest/{second.pk}/change/")
        expect(page.locator("a.withdraw-link")).to_have_count(0)
        page.locator("button[value=approve]").click()
        expect(page.locator(".messagelist")).to_contain_text(f"#{second.pk}")
        shot(page, f"{name}-6-approved")
    finally:
        context.close()

    second.refresh_from_db()
    assert second.state == StaffRequest.State.EXECUTED and second.decided_by == approver
    assert inmate_balance(inmate=site.inmate).spendable_fen == 40_000
    assert Transaction.objects.filter(kind=Transaction.Kind.ADJUSTMENT).count() == 1
