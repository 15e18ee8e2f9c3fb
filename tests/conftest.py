"""Suite-wide set-up. The suite runs against PostgreSQL (row locks, triggers and CHECKs are
what it proves); it refuses to start on anything else rather than quietly test less."""

import pytest
from django.conf import settings
from django.utils import translation

from ledger.reconciliation import run_checks

# PIN and password hashing at full strength costs ~0.3 s a call; the tests are not about it.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The site defaults to Chinese; tests read English unless they ask for Chinese (Accept-Language
# or the language cookie), as a browser would.
SITE_LANGUAGE_CODE = settings.LANGUAGE_CODE
settings.LANGUAGE_CODE = "en"
# Pages render without a collectstatic run (production serves a hashed manifest).
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


@pytest.fixture(autouse=True)
def _tests_language():
    """Each test starts in the tests' language. A request through the test client leaves no
    language active in the thread afterwards, and with none active Django falls back to the
    default it cached when it started, before the line above changed it: the site's Chinese.
    So without this, a test after any page request read Chinese refusals."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


def pytest_sessionstart(session):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            "The test suite needs PostgreSQL: set DATABASE_URL=postgres://… (scripts/test does)."
        )


@pytest.fixture
def assert_ledger_consistent():
    """Call after a scenario: every reconciliation check must come back clean."""

    def check():
        findings = run_checks()
        assert findings == [], findings

    return check


@pytest.fixture
def ledger_snapshot():
    """A fingerprint of every money row: take one before a refused call, compare after."""
    from django.db import connection

    def snapshot():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT
                  (SELECT COUNT(*) FROM ledger_transaction),
                  (SELECT COUNT(*) FROM ledger_entry),
                  (SELECT COUNT(*) FROM ledger_deposit),
                  (SELECT string_agg(status, ',' ORDER BY id) FROM ledger_deposit),
                  (SELECT string_agg(concat_ws(':', id, received_fen, reserved_fen, cap_fen),
                                     ',' ORDER BY id) FROM ledger_monthlyperiod),
                  (SELECT string_agg(concat_ws(':', id, balance_fen, pending_fen, is_frozen,
                                               is_closed), ',' ORDER BY id) FROM ledger_account)
                """
            )
            return cursor.fetchone()

    return snapshot
