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
def _english_unless_asked():
    """Each test starts in the suite's language: a request in Chinese leaves Chinese active in
    the thread (Django's locale middleware activates it), and with none active Django falls
    back to the site's Chinese, fixed before this file set English."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


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


class QueuedReceipts(list):
    """The receipt tasks the code under test queued (their keyword arguments), in order."""

    def run(self) -> list:
        """Run each queued task here, as a worker would (Celery's ``apply``), and empty the
        list; a task that fails fails the test. Returns what each returned."""
        from payments.tasks import send_receipt

        results = [send_receipt.apply(kwargs=kwargs).get() for kwargs in self]
        self.clear()
        return results


@pytest.fixture(autouse=True)
def queued_receipts(monkeypatch) -> QueuedReceipts:
    """Receipt emails are queued for a Celery worker when a deposit is credited. Here they are
    kept in this list instead of sent to a broker no worker of the test reads; a test that
    wants the email runs them (``queued_receipts.run()``)."""
    from payments.tasks import send_receipt

    queued = QueuedReceipts()
    monkeypatch.setattr(send_receipt, "delay", lambda **kwargs: queued.append(kwargs))
    return queued


@pytest.fixture(autouse=True)
def queued_approver_emails(monkeypatch) -> list:
    """Emails to approvers are queued for a Celery worker when a request that waits is filed.
    Here they are kept in this list (the task's keyword arguments) instead of sent to a broker;
    a test runs them with ``email_approvers_of_request.apply(kwargs=...)``."""
    from ledger.notifications import email_approvers_of_request

    queued: list = []
    monkeypatch.setattr(email_approvers_of_request, "delay", lambda **kwargs: queued.append(kwargs))
    return queued
