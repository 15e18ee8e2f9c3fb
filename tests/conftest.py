"""Suite-wide set-up. The suite runs against PostgreSQL (row locks, triggers and CHECKs are
what it proves); it refuses to start on anything else rather than quietly test less.

With ``COMMISSARY_TEST_THROUGH_PGBOUNCER=1`` every test connects through a throwaway PgBouncer
in session mode (``bench/pgbouncer.py``) in front of the test database, configured as
docs/operations.md says (``DATABASE_BEHIND_POOLER``): ``pytest tests/kiosk tests/ledger`` then
proves the kiosk and the ledger work behind the pooler. The test database itself is created
and dropped directly on the server."""

import contextlib
import os

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


def is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


THROUGH_PGBOUNCER = os.environ.get("COMMISSARY_TEST_THROUGH_PGBOUNCER", "").strip().lower() in (
    "1",
    "true",
    "yes",
)


def start_pgbouncer(**options):
    """A PgBouncer in front of the server the test database lives on (``bench.pgbouncer``);
    skips the test where PgBouncer is not installed, and fails it under CI."""
    from bench.pgbouncer import PgBouncerMissing, Pooler

    database = settings.DATABASES["default"]
    pooler = Pooler(
        server_host=database["HOST"] or "127.0.0.1",
        server_port=int(database["PORT"] or 5432),
        user=database["USER"] or "postgres",
        password=database["PASSWORD"] or "",
        **options,
    )
    try:
        return pooler.start()
    except PgBouncerMissing as error:
        reason = f"{error}; the pooler tests need it"
        if is_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)


@contextlib.contextmanager
def routed_through(pooler):
    """Every connection opened inside goes through ``pooler``, set up as a deployment behind a
    pooler is: ``DATABASE_BEHIND_POOLER`` on, no startup options (commissary.db)."""
    from django.db import connections
    from django.test.utils import override_settings

    database = connections["default"].settings_dict
    # Thread connections are made from this same dict (each test thread opens its own).
    assert database is settings.DATABASES["default"]
    saved = {key: database[key] for key in ("HOST", "PORT", "OPTIONS")}
    connections.close_all()
    database["HOST"], database["PORT"] = "127.0.0.1", str(pooler.port)
    database["OPTIONS"] = {k: v for k, v in saved["OPTIONS"].items() if k != "options"}
    try:
        with override_settings(DATABASE_BEHIND_POOLER=True):
            yield pooler
            connections.close_all()
    finally:
        database.update(saved)
        connections.close_all()


if THROUGH_PGBOUNCER:

    @pytest.fixture(scope="session")
    def django_db_setup(django_db_setup, django_db_blocker):
        """pytest-django's set-up (the test database, made on the server), then every
        connection through a session-mode PgBouncer until the database is dropped."""
        pooler = start_pgbouncer(pool_mode="session")
        try:
            with routed_through(pooler):
                yield
        finally:
            pooler.stop()  # its server connections close before the database is dropped


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
