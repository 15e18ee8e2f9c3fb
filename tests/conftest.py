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


class QueuedTasks(list):
    """The tasks of one name the code under test queued (their keyword arguments), in order."""

    def __init__(self, task_name: str):
        super().__init__()
        self.task_name = task_name

    def run(self) -> list:
        """Run each queued task here, as a worker would (Celery's ``apply``), and empty the
        list; a task that fails fails the test. Returns what each returned."""
        from payments import tasks

        task = getattr(tasks, self.task_name.rsplit(".", 1)[1])
        queued, self[:] = list(self), []
        return [task.apply(kwargs=kwargs).get() for kwargs in queued]


@pytest.fixture(autouse=True)
def queued_payment_tasks(monkeypatch) -> dict[str, QueuedTasks]:
    """Payment tasks (receipt emails, provider outbox calls) are queued for a Celery worker
    after a commit. Here they are kept in lists instead of sent to a broker no worker of the
    test reads; a test that wants one done runs its list (``queued_receipts.run()``)."""
    from payments.services import queueing

    queued = {
        name: QueuedTasks(name) for name in (queueing.SEND_RECEIPT, queueing.MAKE_PROVIDER_CALL)
    }

    def queue(task_name, **kwargs):
        queued[task_name].append(kwargs)

    monkeypatch.setattr(queueing, "queue", queue)
    return queued


@pytest.fixture
def queued_receipts(queued_payment_tasks) -> QueuedTasks:
    """The receipt emails queued (``payments.tasks.send_receipt``)."""
    from payments.services import queueing

    return queued_payment_tasks[queueing.SEND_RECEIPT]


@pytest.fixture
def queued_provider_calls(queued_payment_tasks) -> QueuedTasks:
    """The provider outbox calls queued (``payments.tasks.make_provider_call``)."""
    from payments.services import queueing

    return queued_payment_tasks[queueing.MAKE_PROVIDER_CALL]


@pytest.fixture(autouse=True)
def queued_approver_emails(monkeypatch) -> list:
    """Emails to approvers are queued for a Celery worker when a request that waits is filed.
    Here they are kept in this list (the task's keyword arguments) instead of sent to a broker;
    a test runs them with ``email_approvers_of_request.apply(kwargs=...)``."""
    from ledger.notifications import email_approvers_of_request

    queued: list = []
    monkeypatch.setattr(email_approvers_of_request, "delay", lambda **kwargs: queued.append(kwargs))
    return queued
