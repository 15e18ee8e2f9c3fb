"""Every admin page of each role reads in Chinese: a browser signed in as each role, in
zh-hans, opens the admin home, every list and add form it links to, one record of each list,
and the reports, and fails on visible English words outside a small allow-list (product and
provider names, codes, units, the demo data's own names)."""

import json
import os
import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import translation
from playwright.sync_api import Page

from catalog.models import Restriction
from tests.admin.conftest import make_site
from tests.catalog.helpers import funded, grade_at, product_at
from tests.payments.helpers import approved_link, depositor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

# English that is not interface text: names of products and providers, codes and units, and
# the test data's own names (usernames, e-mail addresses, facility codes).
ALLOWED = {
    "English",  # a language's name in that language, where one is chosen
    "alipay",
    "wechat",
    "system",
    "Noodles",
    "CSV",
    "QR",
    "PIN",
    "ID",
    "API",
    "SKU",
    "CNY",
    "UTC",
    "Ctrl",
    "Alipay",
    "WeChat",
    "Pay",
    "sandbox",
    "Asia",
    "Shanghai",
    "PDF",
    "JSON",
    "SQL",
    "URL",
    "HMAC",
    "IP",
    "OK",
    # Key names, as Django's own Chinese names them ("按住 Control 键或 Mac 上的 Command 键").
    "Control",
    "Command",
    "Mac",
    "GET",  # HTTP methods (django-axes' records of a sign-in request)
    "POST",
    "openid",  # WeChat Pay's name of the payer field
}
DATA = re.compile(
    r"^(staff\d+|family\d+|alpha|bravo|Surname\w*|Given\w*|Wei\d*|Prison|N\d+|SKU-\d+|"
    r"Product|Grade|Food|example|com|org|https?|localhost|www)$",
    re.IGNORECASE,
)
# A word on its own: not part of a code, key, address or reference ("staff12", "depositor:7",
# a UUID's letters, "kiosk_…").
WORD = re.compile(r"(?<![\w@.:/\-])[A-Za-z][A-Za-z'’]+(?![\w@.:/\-])")
RANDOM = re.compile(r"[a-z][A-Z]")  # a key's random letters ("ZHyOVf"), never a word
# Found by this test and not fixed yet, with why (none now: journal memos read in Chinese; the
# memo as the system wrote it, shown beside it for the auditor, is marked lang="en" and skipped).
KNOWN: set[str] = set()
SKIPPED_PATHS = ("/admin/logout/", "/admin/password_change/", "/admin/jsi18n/")
# Machinery shown only for the record (Celery's schedule tables, django-axes' attempt logs):
# its texts are the libraries' own (cron descriptions, time zone names) and it is bound for
# superusers only.
MACHINERY = ("/admin/django_celery_beat/", "/admin/axes/")


def _english_words(text: str) -> set[str]:
    words = set()
    for word in WORD.findall(text):
        if word in ALLOWED | KNOWN or DATA.match(word) or RANDOM.search(word):
            continue
        words.add(word)
    return words


def _signed_in_context(browser, live_server, user):
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"Accept-Language": "zh-hans"},
    )
    host = urlsplit(live_server.url).hostname
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "domain": host,
                "path": "/",
            },
            {
                "name": settings.LANGUAGE_COOKIE_NAME,
                "value": "zh-hans",
                "domain": host,
                "path": "/",
            },
        ]
    )
    context.set_default_timeout(15_000)
    return context


def _links(page: Page, pattern: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
    return [href for href in hrefs if re.match(pattern, href or "")]


def _crawl(
    page: Page, *, skipped=SKIPPED_PATHS + MACHINERY, data: frozenset[str] = frozenset()
) -> dict[str, set[str]]:
    """{url: English words seen} over the admin home, the lists and add forms it links to, the
    first record of each list, and the reports."""
    found: dict[str, set[str]] = {}
    seen: set[str] = set()

    def visit(url: str) -> None:
        url = url.split("#")[0]
        if url in seen or any(url.startswith(skip) for skip in skipped):
            return
        seen.add(url)
        answer = page.goto(url)
        assert answer is not None and answer.status < 500, url
        # Text that declares itself English (lang="en": a stored memo as the system wrote it)
        # is data, not interface: hidden before reading what is shown.
        page.evaluate(
            "document.querySelectorAll('[lang=\"en\"]').forEach(e => e.style.display = 'none')"
        )
        # A time zone choice lists the IANA zone identifiers ("America/Argentina/Buenos_Aires"):
        # codes, not words.
        page.evaluate(
            "document.querySelectorAll('select[name$=\"timezone\"]')"
            ".forEach(e => e.style.display = 'none')"
        )
        # A password's stored hash is shown by its parts (algorithm, iterations, salt, hash):
        # codes, not words.
        page.evaluate(
            "document.querySelectorAll('.field-password bdi')"
            ".forEach(e => e.style.display = 'none')"
        )
        words = _english_words(page.locator("body").inner_text())
        words = (words | _english_words(page.title())) - data
        if words:
            found[url] = words

    # The home is the work queue; the model list is one click away, and the lists are there.
    visit("/admin/")
    reports = set(_links(page, r"^/admin/reports/"))
    visit("/admin/models/")
    lists = sorted(set(_links(page, r"^/admin/\w+/\w+/(add/)?$")))
    reports = sorted(reports | set(_links(page, r"^/admin/reports/")))
    for url in lists:
        visit(url)
        if not url.endswith("/add/"):
            records = _links(page, rf"^{re.escape(url)}\d+/change/")
            if records:
                visit(records[0])
    for url in reports:
        visit(url)
        for report in sorted(set(_links(page, r"^/admin/reports/[\w-]+/$"))):
            visit(report)
    return found


@pytest.fixture
def busy_site():
    """A facility with something in every list: money, an order, a grade, a restriction, a
    family link, audit entries."""
    site = make_site("alpha")
    inmate = funded(site.inmate, 50_000)
    grade_at(site.facility, limit_fen=45_000, name="Grade A")
    product = product_at(site.facility, price_fen=450, name_zh="方便面", name_en="Noodles")
    from catalog import services as catalog_services
    from facilities import services as facility_services

    device, _ = facility_services.register_kiosk_device(facility=site.facility, name="K1")
    catalog_services.place_order(
        inmate_id=inmate.pk,
        device_id=device.pk,
        items=[{"product_id": product.pk, "quantity": 1}],
        idempotency_key="00001",
    )
    with translation.override("zh-hans"):  # names are kept as written, in the writer's language
        Restriction.objects.create(inmate=inmate, kind="product", product=product, reason="打架")
        approved_link(depositor(), inmate)
    return site


@pytest.mark.parametrize("role", ["facility_admin", "trust_officer", "clerk", "auditor"])
def test_every_admin_page_of_the_role_reads_in_chinese(browser, live_server, busy_site, role):
    user = busy_site.staff[role]
    context = _signed_in_context(browser, live_server, user)
    try:
        found = _crawl(context.new_page())
    finally:
        context.close()
    if os.environ.get("CRAWL_REPORT"):
        with open(f"{os.environ['CRAWL_REPORT']}-{role}.json", "w") as report:
            json.dump({url: sorted(words) for url, words in found.items()}, report, indent=1)
    assert found == {}


@pytest.fixture
def machinery(busy_site):
    """The superuser's extra pages with something in each list: the default schedules, a
    failed sign-in, a lock-out and a sign-in in django-axes' logs."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from catalog.schedules import ensure_escalation_schedule
    from ledger.schedules import ensure_schedules
    from monitoring.schedules import ensure_schedule
    from reports.schedules import ensure_digest_schedule

    ensure_schedules()
    ensure_escalation_schedule()
    ensure_schedule()
    ensure_digest_schedule()
    common = {
        "user_agent": "Mozilla/5.0",
        "ip_address": "10.0.0.9",
        "username": "staff1",
        "http_accept": "text/html",
        "path_info": "/admin/login/",
    }
    AccessAttempt.objects.create(**common, get_data="", post_data="", failures_since_start=3)
    AccessFailureLog.objects.create(**common, locked_out=True)
    AccessLog.objects.create(**common, session_hash="x" * 64)
    return busy_site


def test_every_admin_page_of_a_superuser_reads_in_chinese(browser, live_server, machinery):
    """The superuser's pages too: people, roles and their permissions, the schedules and the
    sign-in logs (the libraries' own words, translated in the project's catalogue), and the
    default schedules' names and descriptions (stored in English, read in Chinese).

    The audit trail's names of the schedules are records of what was shown when it wrote them
    (their intervals too, "every 5 minutes"): their words are data here."""
    from auditlog.models import LogEntry

    from tests.factories import StaffFactory

    stored = " ".join(
        LogEntry.objects.filter(content_type__app_label="django_celery_beat").values_list(
            "object_repr", flat=True
        )
    )
    data = frozenset(WORD.findall(stored))
    context = _signed_in_context(browser, live_server, StaffFactory(is_superuser=True))
    try:
        found = _crawl(context.new_page(), skipped=SKIPPED_PATHS, data=data)
    finally:
        context.close()
    if os.environ.get("CRAWL_REPORT"):
        with open(f"{os.environ['CRAWL_REPORT']}-superuser.json", "w") as report:
            json.dump({url: sorted(words) for url, words in found.items()}, report, indent=1)
    assert found == {}


def test_a_form_sent_back_with_errors_reads_in_chinese(browser, live_server, busy_site):
    """A form the admin sends back (its title starts "Error:" in Django's English) and a
    restriction without its target read in Chinese, title included."""
    context = _signed_in_context(browser, live_server, busy_site.staff["clerk"])
    try:
        page = context.new_page()
        page.goto("/admin/catalog/restriction/add/")
        page.locator("select[name=kind]").select_option("category")
        page.locator("input[name=reason]").fill("违反监规")
        page.locator("input[name=_save]").click()
        page.wait_for_load_state()
        assert page.title().startswith("错误：")
        assert "请选择禁购的类别。" in page.locator("body").inner_text()
        hide = "document.querySelectorAll('select').forEach(e => e.style.display = 'none')"
        page.evaluate(hide)  # the product and category choices: names, not interface
        words = _english_words(page.locator("body").inner_text()) | _english_words(page.title())
    finally:
        context.close()
    assert words == set()
