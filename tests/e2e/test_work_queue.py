"""Each role's admin home in a real browser, in English and Chinese, on a phone (390 px) and a
desktop (1280 px): the home opens on the role's work queue with counts and links that lead to
the filtered list, and the dashboard draws its charts with no CSP violation. Set
WORK_QUEUE_SCREENSHOTS to a folder to keep a screenshot of each page."""

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import DepositorLink
from commissary.errors import DomainError
from facilities import services as facility_services
from ledger import services
from ledger.models import ReconciliationFinding, ScheduledRun, StaffRequest
from tests.admin.conftest import make_site
from tests.catalog.helpers import order_from_kiosk, product_at
from tests.factories import StaffFactory
from tests.ledger.helpers import deposit, key

from .conftest import TIMEOUT_MS

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

SHOTS = os.environ.get("WORK_QUEUE_SCREENSHOTS")
WIDTHS = (390, 1280)
# Per role: the queue it must see first, its heading in each language, and a label it must not
# see (another role's work).
ROLES = {
    "trust_officer_2": {
        "first": ("Money requests waiting for your approval", "等待您审批的资金申请"),
        "absent": "Orders to pick",
    },
    "facility_admin": {
        "first": ("Family links waiting for a decision", "等待决定的家属关联申请"),
        "absent": "Money requests waiting",
    },
    "clerk": {"first": ("Orders to pick", "待拣货的订单"), "absent": "Money requests waiting"},
    "auditor": {
        "first": ("Open reconciliation findings", "未解决的对账问题"),
        "absent": "Orders to pick",
    },
}
HEADING = {"en": "What waits for you", "zh-hans": "您的待办事项"}


def _work_for_every_role(site):
    """Something in every queue of the site's facility."""
    deposit(site.inmate, 20_000)
    services.request_money_action(
        kind=StaffRequest.Kind.CREDIT,
        inmate_id=site.inmate.pk,
        amount_fen=5_000,
        reason="Kitchen wages",
        staff_id=site.staff["trust_officer"].pk,
    )
    DepositorLink.objects.create(
        depositor=StaffFactory(is_staff=False),
        inmate=site.inmate,
        entered_inmate_number=site.inmate.inmate_number,
        entered_surname=site.inmate.surname,
    )
    services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=site.inmate.pk,
        amount_fen=1_000,
        idempotency_key=key(),
        now=timezone.now() - dt.timedelta(hours=5),
    )
    run = ScheduledRun.objects.create(
        kind=ScheduledRun.Kind.RECONCILIATION,
        facility=site.facility,
        status=ScheduledRun.Status.FOUND_PROBLEMS,
        started_at=timezone.now() - dt.timedelta(hours=7),
        finished_at=timezone.now() - dt.timedelta(hours=7),
    )
    ReconciliationFinding.objects.create(
        run=run,
        check_name="cached_balance",
        facility=site.facility,
        subject="account 1",
        expected="1",
        actual="2",
    )
    device, _ = facility_services.register_kiosk_device(facility=site.facility, name="K1")
    soap = product_at(site.facility, price_fen=500, stock=6, name_en="Soap", name_zh="肥皂")
    order_from_kiosk(site.inmate, device, soap, "order-1", quantity=2)
    with pytest.raises(DomainError):
        order_from_kiosk(site.inmate, device, soap, "order-2", quantity=9)


def _shot(page, name):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def _open_as(browser, live_server, sign_in, user, language):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    sign_in(page, user)
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    return context, page, violations


@pytest.mark.parametrize("language", ("en", "zh-hans"))
@pytest.mark.parametrize("role", tuple(ROLES))
def test_each_role_s_home_opens_on_its_work_queue(browser, live_server, sign_in, role, language):
    site = make_site("alpha")
    _work_for_every_role(site)
    expected = ROLES[role]
    first = expected["first"][0 if language == "en" else 1]
    context, page, violations = _open_as(browser, live_server, sign_in, site.staff[role], language)
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto("/admin/")
            expect(page.get_by_role("heading", name=HEADING[language])).to_be_visible()
            table = page.locator("table.work-queue-table")
            expect(table.locator("tbody tr").first).to_contain_text(first)
            if language == "en":
                expect(table).not_to_contain_text(expected["absent"])
            box = table.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (width, box)
            _shot(page, f"home-{role}-{language}-{width}")
        count_link = page.locator("table.work-queue-table tbody tr").first.locator("td a")
        count = count_link.inner_text()
        assert int(count) >= 1
        count_link.click()
        expect(page).not_to_have_url(f"{live_server.url}/admin/")
        _shot(page, f"list-{role}-{language}")
        page.goto("/admin/")
        page.locator(".model-list-link a").first.click()
        expect(page).to_have_url(f"{live_server.url}/admin/models/")
        assert violations == []
    finally:
        context.close()


@pytest.mark.parametrize("language", ("en", "zh-hans"))
def test_the_dashboard_draws_its_charts_without_a_csp_violation(
    browser, live_server, sign_in, language
):
    site = make_site("alpha")
    _work_for_every_role(site)
    context, page, violations = _open_as(
        browser, live_server, sign_in, site.staff["auditor"], language
    )
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"/admin/reports/dashboard/?facility={site.facility.pk}&days=7")
            charts = page.locator("figure.chart img")
            expect(charts).to_have_count(2)
            for index in range(2):
                image = charts.nth(index)
                expect(image).to_be_visible()
                loaded = image.evaluate("img => img.complete && img.naturalWidth")
                assert loaded > 0
                assert image.bounding_box()["width"] <= width
            _shot(page, f"dashboard-{language}-{width}")
        page.goto(f"/admin/reports/sales/?facility={site.facility.pk}&from=2999-01-01")
        expect(page.locator(".errorlist")).to_be_visible()
        _shot(page, f"refused-date-{language}")
        assert violations == []
    finally:
        context.close()
