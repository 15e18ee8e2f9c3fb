"""The scheduled money work on a real Celery worker, with Redis as the broker: the task crosses
the broker, a separate worker process runs it against the test database, and the tests read
the outcome back from the database.

Guards invariants 4 and 8 where they meet the infrastructure: a rollover killed half-way, or
delivered twice, still ends with exactly one period per active inmate for the month, and a
reconciliation run through the worker reports a corrupted cached balance without repairing it.
"""

import datetime as dt
import secrets
import time
import uuid

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from facilities.services import release_inmate
from ledger import tasks
from ledger.models import Account, MonthlyPeriod, ScheduledRun
from ledger.reconciliation import run_checks
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db(transaction=True)

ROLLOVER = ScheduledRun.Kind.ROLLOVER
RECONCILIATION = ScheduledRun.Kind.RECONCILIATION
Status = ScheduledRun.Status


def _admit(facility, count: int) -> list:
    return [InmateFactory(facility=facility) for _ in range(count)]


def _admit_and_release(facility):
    inmate = InmateFactory(facility=facility)
    return release_inmate(
        inmate_id=inmate.pk,
        staff_id=None,
        idempotency_scope="system",
        idempotency_key=key("release"),
    )


def _admit_in_bulk(facility, count: int) -> None:
    """``count`` active inmates laid out as intake lays them out (``intake_inmate`` and
    ``open_inmate_accounts``: the record with a hashed PIN and a card token, then an empty
    spendable account carrying the balance cap and an empty held account), in two set-based
    statements; intake one by one would take minutes."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO facilities_inmate
                (facility_id, inmate_number, surname, given_name, status, pin_hash, card_token,
                 admitted_at)
            SELECT %(facility)s, 'B' || lpad(n::text, 7, '0'), 'Li', 'Bulk' || n, 'active',
                   %(pin_hash)s, md5(%(salt)s || n::text), now()
            FROM generate_series(1, %(count)s) AS n
            """,
            {
                "facility": facility.pk,
                "pin_hash": make_password("1234"),
                "salt": secrets.token_hex(8),
                "count": count,
            },
        )
        cursor.execute(
            """
            INSERT INTO ledger_account
                (kind, facility_id, inmate_id, provider, currency, balance_fen, pending_fen,
                 balance_cap_fen, is_frozen, is_closed, created_at)
            SELECT k.kind, f.id, i.id, '', f.currency, 0, 0,
                   CASE WHEN k.kind = 'spendable' THEN f.balance_cap_fen END, false, false, now()
            FROM facilities_inmate i
            JOIN facilities_facility f ON f.id = i.facility_id
            CROSS JOIN (VALUES ('spendable'), ('held')) AS k (kind)
            WHERE i.facility_id = %(facility)s
              AND NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.inmate_id = i.id)
            """,
            {"facility": facility.pk},
        )


def _runs(kind: str, **filters):
    return ScheduledRun.objects.filter(kind=kind, **filters).order_by("pk")


def _finished_runs(kind: str, count: int, **filters) -> list[ScheduledRun]:
    """The first ``count`` finished runs, or an empty list while fewer have finished."""
    runs = list(_runs(kind, **filters).exclude(status=Status.RUNNING))
    return runs[:count] if len(runs) >= count else []


def _period_counts(facility, month: dt.date, *, inmate_excluded) -> tuple[int, int, int]:
    """(periods, distinct inmates, periods of ``inmate_excluded``) of the facility's month."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT inmate_id), COUNT(*) FILTER (WHERE inmate_id = %s) "
            "FROM ledger_monthlyperiod WHERE facility_id = %s AND month = %s",
            [inmate_excluded.pk, facility.pk, month],
        )
        return cursor.fetchone()


def _database_sessions_of(application_name: str) -> int:
    """Sessions a process opened under ``application_name`` (libpq's PGAPPNAME): only the
    worker's own, not the live server's or another test's that may still be idle."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def test_rollover_on_a_worker_opens_one_period_per_active_inmate_and_closes_ended_months(
    broker, start_worker, wait_for
):
    facility = FacilityFactory(timezone="America/New_York")
    active = _admit(facility, 20)
    released = _admit_and_release(facility)
    # A facility in another timezone waits for its own timezone's schedule.
    elsewhere = FacilityFactory(timezone="Asia/Shanghai")
    waiting = InmateFactory(facility=elsewhere)
    # Money received six weeks ago leaves an open period of an ended month behind.
    six_weeks_ago = timezone.now() - dt.timedelta(weeks=6)
    deposit(active[0], 30_000, now=six_weeks_ago)
    start_worker()

    broker.send(tasks.roll_over_periods, timezone_name="America/New_York")

    [run] = wait_for(
        lambda: _finished_runs(ROLLOVER, 1, facility=facility), what="the rollover to finish"
    )
    assert run.status == Status.SUCCEEDED
    assert run.month == facility.local_month(run.started_at)
    assert run.counts == {"periods_closed": 1, "periods_opened": 20}
    assert (run.progress_done, run.progress_total) == (21, 21)  # the released inmate counted
    assert _period_counts(facility, run.month, inmate_excluded=released) == (20, 20, 0)
    opened = MonthlyPeriod.objects.filter(facility=facility, month=run.month)
    assert set(opened.values_list("inmate_id", flat=True)) == {inmate.pk for inmate in active}
    assert set(opened.values_list("cap_fen", "received_fen", "reserved_fen", "closed_at")) == {
        (facility.monthly_cap_fen, 0, 0, None)
    }
    ended = MonthlyPeriod.objects.get(inmate=active[0], month=facility.local_month(six_weeks_ago))
    assert (ended.received_fen, ended.closed_at) == (30_000, run.started_at)
    assert not MonthlyPeriod.objects.filter(inmate=waiting).exists()
    assert not _runs(ROLLOVER, facility=elsewhere).exists()
    assert run_checks() == []


def test_reconciliation_on_a_worker_is_clean_then_names_a_corrupted_cached_balance(
    broker, start_worker, wait_for
):
    facility = FacilityFactory(trust_alert_emails="trust-office@example.test")
    inmate, _without_money = _admit(facility, 2)
    deposit(inmate, 50_000)
    spendable = Account.objects.get(inmate=inmate, kind=Account.Kind.SPENDABLE)
    worker = start_worker()

    broker.send(tasks.reconcile_ledger)

    [clean] = wait_for(
        lambda: _finished_runs(RECONCILIATION, 1), what="the first reconciliation to finish"
    )
    assert (clean.status, clean.counts) == (Status.SUCCEEDED, {"findings": 0, "mode": "screened"})
    assert not clean.findings.exists()

    # A cached balance drifts from its entries (still under the 500,000 fen balance cap, so
    # no CHECK refuses it and only the cached-balance check can see it).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_account SET balance_fen = balance_fen + 100000 "
            "WHERE inmate_id = %s AND kind = 'spendable'",
            [inmate.pk],
        )
    broker.send(tasks.reconcile_ledger)

    _, corrupt = wait_for(
        lambda: _finished_runs(RECONCILIATION, 2), what="the second reconciliation to finish"
    )
    assert (corrupt.status, corrupt.counts) == (
        Status.FOUND_PROBLEMS,
        {"findings": 1, "mode": "screened"},
    )
    assert list(
        corrupt.findings.values_list("check_name", "facility_id", "subject", "expected", "actual")
    ) == [("cached_balance_mismatch", facility.pk, f"account {spendable.pk}", "50000", "150000")]
    spendable.refresh_from_db()
    assert spendable.balance_fen == 150_000  # reported, never repaired
    wait_for(
        lambda: f"Reconciliation found 1 problem(s) at {facility.name}" in worker.log(),
        what="the trust-office alert in the worker's output",
        timeout=10,
    )


# The rollover opens periods in chunks of LEDGER_ROLLOVER_CHUNK_SIZE inmates, given to the
# workers explicitly, so that this run has several chunks to be killed between.
ROLLOVER_CHUNK_SIZE = 100
BULK_INMATES = 250
# The first worker pauses this long after each chunk: it is killed in the pause after the first.
KILLED_WORKER_PAUSE_SECONDS = 5


def test_rollover_killed_mid_run_is_delivered_again_and_ends_with_one_period_per_active_inmate(
    broker, start_worker, wait_for
):
    facility = FacilityFactory()
    released = _admit_and_release(facility)
    _admit_in_bulk(facility, BULK_INMATES)
    chunking = {"LEDGER_ROLLOVER_CHUNK_SIZE": str(ROLLOVER_CHUNK_SIZE)}
    first_worker = start_worker(
        **chunking,
        LEDGER_BATCH_PAUSE_SECONDS=str(KILLED_WORKER_PAUSE_SECONDS),
        PGAPPNAME="commissary-killed-worker",
    )

    task_id = broker.send(tasks.roll_over_periods, timezone_name=facility.timezone)

    killed = wait_for(
        lambda: _runs(
            ROLLOVER, facility=facility, status=Status.RUNNING, progress_done__gt=0
        ).first(),
        what="the rollover's first chunk",
    )
    assert _database_sessions_of("commissary-killed-worker") == 1  # pausing between chunks
    first_worker.kill()
    # Its database session ends with it; only then is what it committed final.
    wait_for(
        lambda: _database_sessions_of("commissary-killed-worker") == 0,
        what="the killed worker's database session to end",
        timeout=10,
    )
    killed.refresh_from_db()
    assert killed.status == Status.RUNNING  # nothing has noticed yet
    assert 0 < killed.progress_done < BULK_INMATES
    opened_before_kill, _, _ = _period_counts(facility, killed.month, inmate_excluded=released)
    assert 0 < opened_before_kill < BULK_INMATES
    taken_at = broker.taken_at(task_id)
    assert taken_at is not None, "the killed worker acknowledged a rollover it had not finished"

    # A worker gives back the messages held past the visibility timeout when it starts (while
    # running, kombu sweeps only every 100 s), so the second one starts once that has passed.
    time.sleep(max(0.0, taken_at + broker.visibility_timeout_seconds + 0.5 - time.time()))
    start_worker(**chunking)

    finished = wait_for(
        lambda: _runs(ROLLOVER, facility=facility, status=Status.SUCCEEDED).first(),
        what="the redelivered rollover to succeed",
    )
    wait_for(
        lambda: broker.taken_at(task_id) is None,
        what="the redelivered rollover to be acknowledged",
        timeout=10,
    )
    killed.refresh_from_db()
    assert (killed.status, killed.finished_at) == (Status.ABANDONED, finished.started_at)
    assert list(_runs(ROLLOVER, facility=facility)) == [killed, finished]
    assert finished.month == killed.month
    assert finished.counts == {
        "periods_closed": 0,
        "periods_opened": BULK_INMATES - opened_before_kill,
    }
    assert _period_counts(facility, finished.month, inmate_excluded=released) == (
        BULK_INMATES,
        BULK_INMATES,
        0,
    )
    assert run_checks() == []


def test_rollover_delivered_twice_opens_one_set_of_periods(broker, start_worker, wait_for):
    facility = FacilityFactory()
    active = _admit(facility, 5)
    released = _admit_and_release(facility)
    start_worker()

    # The same message twice, as a broker delivering it again would.
    task_id = str(uuid.uuid4())
    for _ in range(2):
        broker.send(tasks.roll_over_periods, task_id=task_id, timezone_name=facility.timezone)

    first, second = wait_for(
        lambda: _finished_runs(ROLLOVER, 2, facility=facility), what="both rollovers to finish"
    )
    assert (first.status, second.status) == (Status.SUCCEEDED, Status.SUCCEEDED)
    assert first.counts == {"periods_closed": 0, "periods_opened": len(active)}
    assert second.counts == {"periods_closed": 0, "periods_opened": 0}
    assert first.month == second.month
    assert _period_counts(facility, first.month, inmate_excluded=released) == (5, 5, 0)
    assert run_checks() == []
