"""Two real Celery workers on one Redis queue share a scheduled run chunk by chunk
(``ledger.chunks``), and one of them is SIGKILLed while it holds a chunk: the other takes the
chunk over once its claim expires, and the run ends with every active inmate rolled over
exactly once — no chunk left out, none counted twice, no period twice, the run finished. A
reconciliation shared by two workers reports each finding once.
"""

import pytest
from django.db import connection

from ledger import tasks
from ledger.models import BatchChunk, MonthlyPeriod, ScheduledRun
from ledger.reconciliation import CHECKS, run_checks
from tests.celery.test_worker import (
    _admit_and_release,
    _admit_in_bulk,
    _database_sessions_of,
    _period_counts,
)
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db(transaction=True)

ROLLOVER = ScheduledRun.Kind.ROLLOVER
RECONCILIATION = ScheduledRun.Kind.RECONCILIATION
INMATES = 300
CHUNK_SIZE = 10  # 31 chunks
CLAIM_SECONDS = 4
APPLICATION = "commissary-shared-run-worker"


def _chunks(run):
    return BatchChunk.objects.filter(run=run).order_by("number")


def test_two_workers_share_a_rollover_and_a_killed_ones_chunk_is_taken_over(
    broker, start_worker, wait_for
):
    facility = FacilityFactory()
    released = _admit_and_release(facility)
    _admit_in_bulk(facility, INMATES)
    shared = {
        "LEDGER_ROLLOVER_CHUNK_SIZE": str(CHUNK_SIZE),
        "LEDGER_CHUNK_CLAIM_SECONDS": str(CLAIM_SECONDS),
        # A pause while each chunk is claimed (before its work), so the run lasts long enough
        # for both workers to take chunks and for one to be killed holding one.
        "LEDGER_BATCH_PAUSE_SECONDS": "1",
    }
    # Both consume before the task is sent (a worker that starts later would take back the
    # scheduled task's message once the test's short visibility timeout has passed).
    workers = [
        start_worker(queues=broker.all_queues, PGAPPNAME=f"{APPLICATION}-{n}", **shared)
        for n in (1, 2)
    ]

    task_id = broker.send(tasks.roll_over_periods, timezone_name=facility.timezone)

    # One worker took the scheduled task (it plans the chunks and works through them); the
    # other takes the helper messages. The helper is killed holding a chunk, after one done.
    [steady] = wait_for(
        lambda: [worker for worker in workers if task_id in worker.log()],
        what="a worker to take the rollover",
    )
    [doomed] = [worker for worker in workers if worker is not steady]
    run = wait_for(
        lambda: ScheduledRun.objects.filter(kind=ROLLOVER, facility=facility).first(),
        what="the rollover to start",
    )
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

    finished = wait_for(
        lambda: ScheduledRun.objects.filter(pk=run.pk).exclude(status="running").first(),
        what="the steady worker to finish the run",
        timeout=120,
    )

    assert finished.status == ScheduledRun.Status.SUCCEEDED
    assert finished.counts == {"periods_closed": 0, "periods_opened": INMATES}
    assert (finished.progress_done, finished.progress_total) == (INMATES + 1, INMATES + 1)
    chunks = list(_chunks(run))
    assert len(chunks) == -(-(INMATES + 1) // CHUNK_SIZE)  # the released inmate has an id too
    assert {chunk.state for chunk in chunks} == {"done"}
    assert sum(chunk.counts["periods_opened"] for chunk in chunks) == INMATES
    taken_over = next(chunk for chunk in chunks if chunk.pk == held.pk)
    assert taken_over.attempt == 2 and taken_over.worker.startswith(f"{steady.name}@")
    assert {chunk.attempt for chunk in chunks if chunk.pk != held.pk} == {1}
    workers = {chunk.worker.split("@")[0] for chunk in chunks}
    assert workers == {steady.name, doomed.name}  # both did chunks
    # Exactly once: one period for each active inmate, none for the released one.
    assert _period_counts(facility, finished.month, inmate_excluded=released) == (
        INMATES,
        INMATES,
        0,
    )
    assert MonthlyPeriod.objects.filter(facility=facility).count() == INMATES
    assert list(ScheduledRun.objects.filter(kind=ROLLOVER, facility=facility)) == [finished]
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
