"""The embedded default tells the truth: ``scripts/run``'s path on a fresh SQLite database
(no DATABASE_URL, no REDIS_URL) migrates, schedules the nightly work, seeds, takes a deposit and
a purchase, expires, rolls over, reconciles clean and writes statements, and its journal is
append-only and balanced there too (invariants 1 and 5 as SQLite triggers).

The suite runs on PostgreSQL, so this runs the app in processes of its own: ``scripts/run
--prepare-only`` (install, migrate, seed), then ``walkthrough.py`` beside this file, which does
the money work and reports what it saw as JSON.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
EXPECTED_SCHEDULES = [
    "catalog.tasks.escalate_overdue_disputes",
    "ledger.tasks.create_journal_partitions",
    "ledger.tasks.expire_stale_deposits",
    "ledger.tasks.generate_monthly_statements",
    "ledger.tasks.reconcile_ledger",
    "ledger.tasks.roll_over_periods",
    "monitoring.tasks.purge_monitoring_data",
    "monitoring.tasks.refund_stale_holds",
    "payments.tasks.poll_pending_payments",
    "payments.tasks.queue_unsent_receipts",
    "payments.tasks.retry_provider_calls",
    "reports.tasks.queue_staff_digests",
]
APPEND_ONLY_REFUSAL = "is never changed or deleted: the journal is append-only"


def _embedded_environment(data_dir: Path) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        # As a new user's terminal: no settings module named (the scripts must name it).
        if name not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        and not name.startswith("CELERY")
    }
    return {
        **environment,
        "COMMISSARY_DATA_DIR": str(data_dir),
        "DEMO_INMATES": "3",
        "DEPOSIT_RESERVATION_MINUTES": "45",
        "PAYMENTS_SANDBOX": "true",
    }


def _run(command: list[str], environment: dict[str, str]) -> str:
    finished = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        command,
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, f"{command} failed:\n{finished.stdout}\n{finished.stderr}"
    return finished.stdout


@pytest.fixture(scope="module")
def embedded_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedded")


@pytest.fixture(scope="module")
def walkthrough(embedded_data_dir) -> dict:
    environment = _embedded_environment(embedded_data_dir)
    _run([str(REPOSITORY / "scripts" / "run"), "--prepare-only"], environment)
    assert (embedded_data_dir / "commissary.sqlite3").is_file()
    assert json.loads((embedded_data_dir / "demo-credentials.json").read_text())["inmates"]
    output = _run([sys.executable, "tests/sqlite/walkthrough.py"], environment)
    return json.loads(output.strip().splitlines()[-1])


def _ran(walkthrough: dict, *parts: str) -> dict:
    """The walkthrough's report, after checking that these parts of it ran without an error."""
    failed = {part: walkthrough["errors"][part] for part in parts if part in walkthrough["errors"]}
    assert not failed, failed
    return walkthrough


def test_the_embedded_default_is_sqlite_and_migrate_alone_scheduled_the_nightly_work(
    walkthrough,
):
    assert walkthrough["vendor"] == "sqlite"
    assert walkthrough["schedules"] == EXPECTED_SCHEDULES


def test_a_deposit_and_a_purchase_move_the_money_once(walkthrough):
    _ran(walkthrough, "deposit_and_purchase")
    assert walkthrough["deposit_status"] == "credited"
    assert walkthrough["spendable_moved_fen"] == 10_000 - 2_500
    assert walkthrough["replay_returns_the_first"] and walkthrough["replay_wrote_nothing"]
    assert walkthrough["reservation_minutes"] == 45  # DEPOSIT_RESERVATION_MINUTES
    assert walkthrough["order"] == {
        "answer_kept": True,
        "debited": True,
        "stock_taken": True,
        "replay_is_the_first": True,
        "orders": 1,
    }
    assert walkthrough["refusal"] == {"codes": ["out_of_stock", "out_of_stock"], "kept": 1}


def test_expiry_compares_instants_not_text(walkthrough):
    # Asked with a Shanghai-time "now" (8 hours ahead of the stored UTC text), expiry still
    # expires only the reservation that is really stale.
    _ran(walkthrough, "expiry_asked_in_facility_time")
    assert walkthrough["expired"] == 1
    assert walkthrough["stale_fresh_status"] == ["expired", "created"]


def test_rollover_reconciliation_and_statements_run_clean(walkthrough):
    _ran(walkthrough, "rollover", "reconciliation", "statements")
    assert walkthrough["rollover"] == ["succeeded"]
    assert walkthrough["reconciliation"] == ["succeeded", 0]
    assert walkthrough["statement_runs"] == ["succeeded", "succeeded"]
    assert walkthrough["statements_this_month"] == 3


def test_statements_put_a_facility_local_month_start_in_its_own_month(walkthrough):
    # A deposit at 00:31 on the 1st, facility time, is the previous day in UTC: the statement
    # shows it in this month and agrees with the journal as the ORM sums it.
    _ran(walkthrough, "deposit_at_the_facility_local_month_start", "statements")
    statement, journal = walkthrough["statement"], walkthrough["journal"]
    assert statement["shows_the_early_deposit"]
    assert (statement["opening_fen"], statement["closing_fen"]) == (
        journal["opening_fen"],
        journal["closing_fen"],
    )


@pytest.mark.parametrize("table", ["entry", "transaction", "account_event"])
@pytest.mark.parametrize("operation", ["update", "delete"])
def test_the_journal_refuses_raw_updates_and_deletes_on_sqlite(walkthrough, table, operation):
    _ran(walkthrough, "raw_sql_against_the_journal")
    assert APPEND_ONLY_REFUSAL in walkthrough["refused"][f"{operation}_{table}"]


def test_the_audit_trail_refuses_raw_updates_and_deletes_on_sqlite(walkthrough):
    audit = _ran(walkthrough, "raw_sql_against_the_audit_trail")["audit"]
    assert audit["entries"] > 0
    for refused in ("update", "delete", "update_with_actor_cleared"):
        assert "the audit trail is append-only" in audit[refused]
    assert audit["actor_cleared"] is None  # what deleting a person does
    assert (audit["entries_after"], audit["edited"]) == (audit["entries"], 0)


def test_the_journal_refuses_unbalanced_and_empty_transactions_on_sqlite(walkthrough):
    _ran(walkthrough, "raw_sql_against_the_journal")
    refused = walkthrough["refused"]
    for attempt in (
        "empty_transaction",
        "unbalanced_transaction",
        "entry_added_to_a_committed_transaction",
    ):
        assert "FOREIGN KEY constraint failed" in refused[attempt], attempt
    assert refused["balanced_transaction"] is None
    assert walkthrough["journal_grew_by"] == [1, 2]  # only the balanced one: a row, two legs
    assert _ran(walkthrough, "nothing_left_unsettled")["unsettled_left"] == 0


QUEUE_AND_WAIT = """
import time
from ledger import tasks
from ledger.models import ScheduledRun
tasks.reconcile_ledger.delay(trigger="manual")
for _ in range(240):
    run = ScheduledRun.objects.filter(trigger="manual").exclude(status="running").first()
    if run:
        break
    time.sleep(0.25)
print(run.status if run else "never ran")
"""

# The walkthrough's credits queued their receipt emails in the queue folders before any worker
# ran; the worker of scripts/run sends them.
WAIT_FOR_RECEIPTS = """
import time
from payments.models import Payment
# Credited deposits' payments: the demo's held deposits get their receipt only when accepted.
settled = Payment.objects.filter(status="settled", deposit__status="credited")
for _ in range(240):
    unsent = settled.filter(receipt_sent_at__isnull=True).count()
    if not unsent:
        break
    time.sleep(0.25)
print(settled.count(), unsent)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(condition, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what}")


def test_scripts_run_serves_pages_runs_tasks_without_a_broker_and_stops_on_ctrl_c(
    walkthrough, embedded_data_dir
):
    """The same data directory, started the way a new user starts it: web server, and a
    Celery worker with beat on the filesystem queue, which runs a task queued from outside and
    sends the receipt emails the walkthrough's credits queued."""
    stray_control_folder = REPOSITORY / "control"  # kombu's default, in the working directory
    had_stray_control_folder = stray_control_folder.exists()
    port = _free_port()
    environment = {**_embedded_environment(embedded_data_dir), "PORT": str(port)}
    log_path = embedded_data_dir / "run.log"
    with log_path.open("wb") as log_file:
        app = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
            [str(REPOSITORY / "scripts" / "run")],
            cwd=REPOSITORY,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
    try:
        _wait_for(
            lambda: b"Commissary is running." in log_path.read_bytes(),
            seconds=120,
            what=f"scripts/run to start:\n{log_path.read_text()}",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as page:
            assert page.status == 200
        # Queued from another process, as the admin's button does; the worker picks it up
        # from the queue folders.
        ran = _run([sys.executable, "manage.py", "shell", "-c", QUEUE_AND_WAIT], environment)
        assert ran.split()[-1] == "succeeded"
        settled, unsent = _run(
            [sys.executable, "manage.py", "shell", "-c", WAIT_FOR_RECEIPTS], environment
        ).split()[-2:]
        assert int(settled) > 0 and unsent == "0"
    finally:
        os.killpg(app.pid, signal.SIGINT)  # Ctrl-C
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(app.pid, signal.SIGKILL)
            raise
    assert b"==> stopping" in log_path.read_bytes()

    def group_is_gone() -> bool:
        try:
            os.killpg(app.pid, 0)  # only asks whether any process of the group is left
        except ProcessLookupError:
            return True
        return False

    _wait_for(group_is_gone, seconds=30, what="the web server and worker to stop")
    # The queue's folders, control folder included, are in the data directory.
    assert (embedded_data_dir / "celery-control").is_dir()
    assert had_stray_control_folder or not stray_control_folder.exists()


def test_the_archive_command_refuses_on_sqlite_and_changes_nothing(walkthrough):
    _ran(walkthrough, "detach_journal_month")
    assert "partitioned by month only on PostgreSQL" in walkthrough["detach_refusal"]
    assert walkthrough["entries_after_detach"] == walkthrough["entries_before_detach"] > 0


def test_every_demo_role_s_work_queue_is_counted_on_sqlite(walkthrough):
    # The security officer's queue of held deposits needing attention multiplies a facility's
    # days by one day: SQLite refused it (the admin home answered 500 on the embedded default).
    _ran(walkthrough, "work_queues")
    queues = walkthrough["work_queues"]
    assert "holds_needing_attention" in queues["demo_security_officer"]
    assert "orders_to_pick" in queues["demo_clerk"]
    assert "money_requests" in queues["demo_trust_officer"]
