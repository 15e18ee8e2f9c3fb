"""Browser tests of the staff admin: Playwright's sync API driving the system's Chromium
(Debian's ``chromium`` package) against pytest-django's live server.

Playwright's sync API keeps an asyncio loop marked as running in the test thread while a
browser is open, and Django refuses ORM calls under a running loop (SynchronousOnlyOperation).
These tests build and read their data between page calls, never during one, so the check is
switched off here; the live server answers the browser from its own thread, where the check
still holds.

Without Chromium the tests skip on a workstation and fail under CI (``CI=true``), so a CI
machine that lost the browser cannot pass quietly.
"""

import os
import shutil

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.factories import StaffFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

STAFF_PASSWORD = "correct horse battery"  # what StaffFactory sets
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# A broken page should fail a test in seconds, not in Playwright's default 30.
TIMEOUT_MS = 10_000


def _is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = (
            "Debian's chromium is not on PATH; the browser tests need it "
            "(apt-get install chromium)."
        )
        if _is_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _static_files_without_manifest(settings):
    # Production serves collected, hashed files (whitenoise's manifest storage, which needs
    # collectstatic); the live server serves the apps' static files directly.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def page(browser, live_server) -> Page:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def superuser():
    return StaffFactory(is_superuser=True)


def _sign_in(page: Page, user) -> None:
    page.goto("/admin/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.fixture
def sign_in():
    """Sign in through the admin's own login form, as a staff member does."""
    return _sign_in


@pytest.fixture
def admin_page(page, superuser, sign_in) -> Page:
    """A browser page with a superuser signed in to the admin."""
    sign_in(page, superuser)
    return page
