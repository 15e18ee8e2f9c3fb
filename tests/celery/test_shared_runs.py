"""Two real Celery workers on one Redis queue share a scheduled run chunk by chunk
(``ledger.chunks``), and one of them is SIGKILLed while it holds a chunk: the other takes the
chunk over once its claim expires, and the run ends with its work done exactly once — no
chunk left out, none counted twice, the run finished, reconciliation clean. Proven for each
chunked run that moves or reports money by inmate: the rollover (every active inmate's period
once), the expiry of stale deposits (every stale one expired once, its room given back once)
and the monthly statements (one statement for every inmate of the month, none twice). A
reconciliation shared by two workers reports each finding once.

Each of the killed-worker tests takes 20–30 s: two worker processes start (a few seconds
each), the run is slowed to a second a chunk so that the kill lands on a held chunk, and the
killed worker's claim must expire (CLAIM_SECONDS) before the other takes it over.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from ledger import services, tasks
from ledger.models import Account, BatchChunk, Deposit, MonthlyPeriod, ScheduledRun, Statement
from ledger.reconciliation import CHECKS, run_checks
from ledger.statements import previous_month
from tests.celery.test_worker import (
    _admit_and_release,
    _admit_in_bulk,
    _database_sessions_of,
    _period_counts,
)
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db(transaction=True)

ROLLOVER = ScheduledRun.Kind.ROLLOVER
RECONCILIATION = ScheduledRun.Kind.RECONCILIATION
EXPIRY = ScheduledRun.Kind.EXPIRY
STATEMENTS = ScheduledRun.Kind.STATEMENTS
INMATES = 300
CHUNK_SIZE = 10  # 31 chunks
CLAIM_SECONDS = 4
APPLICATION = "commissary-shared-run-worker"
# A pause while each chunk is claimed (before its work), so the run lasts long enough for both
# workers to take chunks and for one to be killed holding one.
PAUSE_SECONDS = 1


def _chunks(run):
    return BatchChunk.objects.filter(run=run).order_by("number")


def _start_two_workers(broker, start_worker, **env: str) -> list:
    """Two workers on every queue of the test, claims expiring after CLAIM_SECONDS. Both
    consume before the task is sent (a worker that starts later would take back the scheduled
    task's message once the test's short visibility timeout has passed)."""
    shared = {
        "LEDGER_CHUNK_CLAIM_SECONDS": str(CLAIM_SECONDS),
        "LEDGER_BATCH_PAUSE_SECONDS": str(PAUSE_SECONDS),
        **env,
    }
    return [
        start_worker(queues=broker.all_queues, PGAPPNAME=f"{APPLICATION}-{n}", **shared)
        for n in (1, 2)
    ]


def _kill_the_helper_holding_a_chunk(workers, *, task_id: str, run_of, wait_for):
    """One worker took the scheduled task (it plans the chunks and works through them); the
    other takes the helper messages. The helper is SIGKILLed holding a chunk, after one done.
    Returns (the steady worker, the killed one, the chunk it held)."""
    [steady] = wait_for(
        lambda: [worker for worker in workers if task_id in worker.log()],
        what="a worker to take the scheduled task",
    )
    [doomed] = [worker for worker in workers if worker is not steady]
    run = wait_for(run_of, what="the run to start")
    held = wait_for(
        lambda: (
            _chunks(run).filter(worker__startswith=f"{doomed.name}@", state="done").exists()
            and _chunks(run).filter(worker__startswith=f"{doomed.name}@", state="claimed").first()
        ),
        what="the second worker to finish a chunk and claim another",
    )
    doomed.kill()
    doomed_session = f"{APPLICATION}-{workers.index(doomed) + 1}"
    wait_for(
        lambda: _database_sessions_of(doomed_session) == 0,
        what="the killed worker's database session to end",
        timeout=10,
    )
    held.refresh_from_db()
    assert (held.state, held.attempt) == ("claimed", 1)  # killed mid-chunk: claimed, not done
    return steady, doomed, held


def _finished(run, wait_for) -> ScheduledRun:
    return wait_for(
        lambda: ScheduledRun.objects.filter(pk=run.pk).exclude(status="running").first(),
        what="the steady worker to finish the run",
        timeout=120,
    )


def _assert_taken_over_once(chunks, *, held, steady, doomed) -> None:
    """Every chunk done once, the killed worker's by the steady one on a second attempt, and
    both workers did chunks."""
    assert {chunk.state for chunk in chunks} == {"done"}
    taken_over = next(chunk for chunk in chunks if chunk.pk == held.pk)
    assert taken_over.attempt == 2 and taken_over.worker.startswith(f"{steady.name}@")
    assert {chunk.attempt for chunk in chunks if chunk.pk != held.pk} == {1}
    assert {chunk.worker.split("@")[0] for chunk in chunks} == {steady.name, doomed.name}


def test_two_workers_share_a_rollover_and_a_killed_ones_chunk_is_taken_over(
    broker, start_worker, wait_for
):
    facility = FacilityFactory()
    released = _admit_and_release(facility)
    _admit_in_bulk(facility, INMATES)
    workers = _start_two_workers(broker, start_worker, LEDGER_ROLLOVER_CHUNK_SIZE=str(CHUNK_SIZE))

    task_id = broker.send(tasks.roll_over_periods, timezone_name=facility.timezone)

    steady, doomed, held = _kill_the_helper_holding_a_chunk(
        workers,
        task_id=task_id,
        run_of=lambda: ScheduledRun.objects.filter(kind=ROLLOVER, facility=facility).first(),
        wait_for=wait_for,
    )
    run = held.run
    finished = _finished(run, wait_for)

    assert finished.status == ScheduledRun.Status.SUCCEEDED
    assert finished.counts == {"periods_closed": 0, "periods_opened": INMATES}
    assert (finished.progress_done, finished.progress_total) == (INMATES + 1, INMATES + 1)
    chunks = list(_chunks(run))
    assert len(chunks) == -(-(INMATES + 1) // CHUNK_SIZE)  # the released inmate has an id too
    _assert_taken_over_once(chunks, held=held, steady=steady, doomed=doomed)
    assert sum(chunk.counts["periods_opened"] for chunk in chunks) == INMATES
    # Exactly once: one period for each active inmate, none for the released one.
    assert _period_counts(facility, finished.month, inmate_excluded=released) == (
        INMATES,
        INMATES,
        0,
    )
    assert MonthlyPeriod.objects.filter(facility=facility).count() == INMATES
    assert list(ScheduledRun.objects.filter(kind=ROLLOVER, facility=facility)) == [finished]
    assert run_checks() == []


STALE_INMATES = 40
EXPIRY_CHUNK_SIZE = 4  # 11 chunks: ten of four inmates, the last reaching past every id


def test_two_workers_share_an_expiry_and_a_killed_ones_chunk_is_taken_over(
    broker, start_worker, wait_for
):
    facility = FacilityFactory()
    _admit_in_bulk(facility, STALE_INMATES + 1)
    *stale_inmates, fresh_inmate = list(
        facility.inmates.order_by("id").values_list("id", flat=True)
    )
    two_hours_ago = timezone.now() - dt.timedelta(hours=2)

    def reserve(inmate_id, amount_fen, now=None):
        return services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate_id,
            amount_fen=amount_fen,
            idempotency_key=key("reserve"),
            now=now,
        )

    # Every inmate but the last has a stale reservation, every fourth a second one; the last
    # has one still waiting for its payment, and one stale reservation was paid in time.
    stale = [
        reserve(inmate_id, 1_000 + n, two_hours_ago) for n, inmate_id in enumerate(stale_inmates)
    ]
    stale += [reserve(inmate_id, 500, two_hours_ago) for inmate_id in stale_inmates[::4]]
    paid = reserve(stale_inmates[0], 700, two_hours_ago)
    services.credit_deposit(deposit_id=paid.pk, now=two_hours_ago)
    waiting = reserve(fresh_inmate, 2_000)
    assert {finding.check for finding in run_checks()} == {"reservation_outlived_expiry"}
    workers = _start_two_workers(
        broker, start_worker, LEDGER_EXPIRY_CHUNK_SIZE=str(EXPIRY_CHUNK_SIZE)
    )

    task_id = broker.send(tasks.expire_stale_deposits)

    steady, doomed, held = _kill_the_helper_holding_a_chunk(
        workers,
        task_id=task_id,
        run_of=lambda: ScheduledRun.objects.filter(kind=EXPIRY).first(),
        wait_for=wait_for,
    )
    run = held.run
    finished = _finished(run, wait_for)

    assert finished.status == ScheduledRun.Status.SUCCEEDED
    assert finished.counts == {"deposits_expired": len(stale)}
    chunks = list(_chunks(run))
    assert len(chunks) == STALE_INMATES // EXPIRY_CHUNK_SIZE + 1
    _assert_taken_over_once(chunks, held=held, steady=steady, doomed=doomed)
    assert sum(chunk.counts["deposits_expired"] for chunk in chunks) == len(stale)
    # None missed: every stale reservation expired, at the run's instant; nothing else did.
    deposits = Deposit.objects.filter(facility=facility)
    assert set(deposits.filter(status="expired").values_list("pk", flat=True)) == {
        deposit.pk for deposit in stale
    }
    assert set(deposits.filter(status="expired").values_list("resolved_at", flat=True)) == {
        finished.started_at
    }
    assert dict(deposits.exclude(status="expired").values_list("pk", "status")) == {
        paid.pk: "credited",
        waiting.pk: "created",
    }
    # None twice: each one's room was given back once, under both caps, so only the waiting
    # reservation is still pending and reserved.
    accounts = Account.objects.filter(facility=facility, kind="spendable")
    assert dict(accounts.exclude(pending_fen=0).values_list("inmate_id", "pending_fen")) == {
        fresh_inmate: 2_000
    }
    periods = MonthlyPeriod.objects.filter(facility=facility)
    assert periods.aggregate(reserved=Sum("reserved_fen"))["reserved"] == 2_000
    assert list(ScheduledRun.objects.filter(kind=EXPIRY)) == [finished]
    assert run_checks() == []


STATEMENT_INMATES = 40
STATEMENTS_CHUNK_SIZE = 4  # 11 chunks: the last holds the inmate who came after the month


def test_two_workers_share_the_statements_and_a_killed_ones_chunk_is_taken_over(
    broker, start_worker, wait_for
):
    facility = FacilityFactory()
    zone = ZoneInfo(facility.timezone)
    month = previous_month(facility, timezone.now())
    in_the_month = dt.datetime(month.year, month.month, 15, 12, tzinfo=zone)
    _admit_in_bulk(facility, STATEMENT_INMATES)
    with connection.cursor() as cursor:  # admitted before the month began
        cursor.execute(
            "UPDATE facilities_inmate SET admitted_at = %s WHERE facility_id = %s",
            [in_the_month - dt.timedelta(days=45), facility.pk],
        )
    month_inmates = list(facility.inmates.order_by("id").values_list("id", flat=True))
    # Some of them received money in the month; one inmate came only after it ended.
    received = {inmate_id: 1_000 * (n + 1) for n, inmate_id in enumerate(month_inmates[::7])}
    for inmate_id, amount_fen in received.items():
        deposit(facility.inmates.get(pk=inmate_id), amount_fen, now=in_the_month)
    later = InmateFactory(facility=facility)
    workers = _start_two_workers(
        broker, start_worker, LEDGER_STATEMENTS_CHUNK_SIZE=str(STATEMENTS_CHUNK_SIZE)
    )

    task_id = broker.send(tasks.generate_monthly_statements, facility_id=facility.pk)

    steady, doomed, held = _kill_the_helper_holding_a_chunk(
        workers,
        task_id=task_id,
        run_of=lambda: ScheduledRun.objects.filter(kind=STATEMENTS, facility=facility).first(),
        wait_for=wait_for,
    )
    run = held.run
    finished = _finished(run, wait_for)

    assert finished.status == ScheduledRun.Status.SUCCEEDED, finished.error
    assert finished.month == month
    assert finished.counts == {"statements": STATEMENT_INMATES}
    total = STATEMENT_INMATES + 1  # the later inmate's id is in the last chunk's range
    assert (finished.progress_done, finished.progress_total) == (total, total)
    chunks = list(_chunks(run))
    assert len(chunks) == -(-total // STATEMENTS_CHUNK_SIZE)
    _assert_taken_over_once(chunks, held=held, steady=steady, doomed=doomed)
    # None twice: each inmate's statement came from exactly one committed chunk.
    assert sum(chunk.counts["statements"] for chunk in chunks) == STATEMENT_INMATES
    # None missed: one statement for every inmate of the month, none for the later one.
    statements = Statement.objects.filter(facility=facility, month=month)
    assert sorted(statements.values_list("inmate_id", flat=True)) == month_inmates
    assert not Statement.objects.filter(inmate=later).exists()
    closing = dict(statements.values_list("inmate_id", "closing_fen"))
    assert closing == {inmate_id: received.get(inmate_id, 0) for inmate_id in month_inmates}
    assert set(statements.values_list("opening_fen", flat=True)) == {0}
    assert all(bytes(pdf).startswith(b"%PDF") for pdf in statements.values_list("pdf", flat=True))
    assert list(ScheduledRun.objects.filter(kind=STATEMENTS, facility=facility)) == [finished]
    assert run_checks() == []


def test_two_workers_share_a_reconciliation_and_report_each_finding_once(
    broker, start_worker, wait_for
):
    facility = FacilityFactory(trust_alert_emails="trust-office@example.test")
    inmate = InmateFactory(facility=facility)
    deposit(inmate, 50_000)
    with connection.cursor() as cursor:  # a cached balance drifts from its entries
        cursor.execute(
            "UPDATE ledger_account SET balance_fen = balance_fen + 100000 "
            "WHERE inmate_id = %s AND kind = 'spendable'",
            [inmate.pk],
        )
    # A pause while each check is claimed, so that both workers take checks.
    workers = [
        start_worker(queues=broker.all_queues, LEDGER_BATCH_PAUSE_SECONDS="0.5") for _ in (1, 2)
    ]

    broker.send(tasks.reconcile_ledger)

    run = wait_for(
        lambda: ScheduledRun.objects.filter(kind=RECONCILIATION).exclude(status="running").first(),
        what="the reconciliation to finish",
    )
    assert (run.status, run.counts) == ("found_problems", {"findings": 1, "mode": "screened"})
    assert list(run.findings.values_list("check_name", "facility_id")) == [
        ("cached_balance_mismatch", facility.pk)
    ]
    chunks = list(_chunks(run))
    assert sorted(chunk.label for chunk in chunks) == sorted(check.name for check in CHECKS)
    assert {(chunk.state, chunk.attempt) for chunk in chunks} == {("done", 1)}
    assert {chunk.worker.split("@")[0] for chunk in chunks} == {w.name for w in workers}
    # The alert went out once, from whichever worker finished the run.
    wait_for(
        lambda: (
            sum(
                worker.log().count(f"Reconciliation found 1 problem(s) at {facility.name}")
                for worker in workers
            )
            == 1
        ),
        what="one trust-office alert",
        timeout=10,
    )
