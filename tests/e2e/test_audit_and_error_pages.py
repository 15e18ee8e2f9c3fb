"""The audit list and the error pages in a real browser, in Chinese and English, on a phone
(390 px) and a desktop (1280 px): the words are the reader's language, the page fits the
screen's width. Screenshots go to $SCREENSHOT_DIR when it is set (never into the repository)."""

import os
from pathlib import Path

import pytest
from auditlog.models import LogEntry
from playwright.sync_api import expect

from accounts import audit
from tests.admin.conftest import make_site
from tests.catalog.helpers import grade_at

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]
WIDTHS = {"phone": 390, "desktop": 1280}
WORDS = {
    "zh-hans": {"audit": "审计记录", "404": "找不到页面", "403": "无权访问", "500": "出错了"},
    "en": {
        "audit": "log entr",
        "404": "Page not found",
        "403": "Not allowed",
        "500": "Something went wrong",
    },
}


def _shoot(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.fixture
def auditor_site():
    site = make_site("alpha")
    grade = grade_at(site.facility, limit_fen=70_000, name="甲级")
    with audit.acting_as(site.staff["facility_admin"]):
        grade.spending_limit_fen = 45_000
        grade.save()
    site.grade = grade
    return site


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_audit_list_and_error_pages_read_in_the_language_and_fit(
    browser, live_server, auditor_site, language, screen, settings
):
    settings.DEBUG = False
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": WIDTHS[screen], "height": 900},
        extra_http_headers={"Accept-Language": language},
    )
    page = context.new_page()
    words = WORDS[language]
    try:
        page.goto("/family/no-such-page/")
        expect(page.locator("h1")).to_contain_text(words["404"])
        assert _fits(page)
        _shoot(page, f"404-family-{language}-{screen}")

        page.goto("/admin/")
        page.locator("#id_username").fill(auditor_site.staff["auditor"].username)
        page.locator("#id_password").fill("correct horse battery")
        page.locator("input[type=submit]").click()
        page.goto("/admin/auditlog/logentry/")
        expect(page.locator("#content h1")).to_contain_text(words["audit"])
        expect(page.locator("#result_list")).to_contain_text("甲级")
        assert _fits(page) or screen == "phone"  # the admin's wide table scrolls on a phone
        _shoot(page, f"audit-list-{language}-{screen}")
        lowered = LogEntry.objects.get_for_object(auditor_site.grade).latest("pk")
        page.goto(f"/admin/auditlog/logentry/{lowered.pk}/change/")
        expect(page.locator("table.audit-changes")).to_contain_text("¥700.00")
        _shoot(page, f"audit-entry-{language}-{screen}")

        page.goto("/admin/no/such/page/")
        expect(page.locator("#content h1")).to_contain_text(words["404"])
        _shoot(page, f"404-admin-{language}-{screen}")
        page.goto("/admin/ledger/staffrequest/add/")  # auditors may not ask for money
        expect(page.locator("#content h1")).to_contain_text(words["403"])
        _shoot(page, f"403-admin-{language}-{screen}")
    finally:
        context.close()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_500_page_reads_in_the_language_and_fits(browser, live_server, language, screen):
    """Rendered by the handler as production would (no request context), shown by the browser."""
    from django.test import RequestFactory
    from django.utils import translation

    from commissary import error_pages

    with translation.override(language):
        html = error_pages.server_error(RequestFactory().get("/family/")).content.decode()
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": WIDTHS[screen], "height": 900}
    )
    page = context.new_page()
    try:
        page.goto("/healthz")  # same origin, so the stylesheet loads
        page.set_content(html.replace('href="/static/', f'href="{live_server.url}/static/'))
        expect(page.locator("h1")).to_contain_text(WORDS[language]["500"])
        assert _fits(page)
        _shoot(page, f"500-{language}-{screen}")
    finally:
        context.close()
