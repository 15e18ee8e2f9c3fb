"""Scheduled money work as services: monthly rollover, expiry of unpaid deposits,
reconciliation runs and monthly statements. Celery tasks in ``ledger.tasks`` only call these.

Everything here is set-based SQL over chunks of rows (never one Python object per inmate held
at once), idempotent (a re-run after a crash or a duplicate delivery changes nothing more), and
records what it did in a ``ScheduledRun`` for the admin. Guards invariants 4 and 8: because a
period's month is part of its key and every deposit creates its own month's row, a rollover
that runs late, twice or never cannot let money past a cap nor block a deposit; reconciliation
reports and never changes money. Raw statements go through ``ledger.sql``, so instants compare
as instants on the embedded SQLite database too.
"""

import datetime as dt
import logging
import time
from collections import defaultdict
from contextlib import contextmanager

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import connection, transaction
from django.utils import timezone

from facilities.models import Facility

from . import sql
from .models import ReconciliationFinding, ScheduledRun
from .reconciliation import run_checks

log = logging.getLogger(__name__)


def chunk_pause() -> None:
    """An optional breather between chunks so that long batch work yields to the hot path."""
    pause = getattr(settings, "LEDGER_BATCH_PAUSE_SECONDS", 0)
    if pause:
        time.sleep(pause)


def _start_run(
    *,
    kind: str,
    facility: Facility | None = None,
    month: dt.date | None = None,
    trigger: str = "schedule",
    now: dt.datetime,
) -> ScheduledRun:
    """Record the start of a run; an earlier run of the same work still marked running was
    killed (its transaction rolled back or its chunks are redone idempotently)."""
    ScheduledRun.objects.filter(
        kind=kind, facility=facility, month=month, status=ScheduledRun.Status.RUNNING
    ).update(status=ScheduledRun.Status.ABANDONED, finished_at=now)
    return ScheduledRun.objects.create(
        kind=kind, facility=facility, month=month, trigger=trigger, started_at=now
    )


@contextmanager
def recorded_run(**run_fields):
    """A ScheduledRun around a piece of batch work; if the work raises, the run is marked
    failed with the error before the exception goes on (to Celery's log and retry)."""
    run = _start_run(**run_fields)
    try:
        yield run
    except Exception as failure:
        ScheduledRun.objects.filter(pk=run.pk).update(
            status=ScheduledRun.Status.FAILED,
            finished_at=timezone.now(),
            error=repr(failure)[:2000],
            progress_done=run.progress_done,
        )
        raise


def finish_run(run: ScheduledRun, *, status: str = ScheduledRun.Status.SUCCEEDED) -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at", "counts", "progress_done", "progress_total"])


def inmate_id_chunks(facility_id: int, chunk_size: int):
    """(low, high] inmate-id ranges covering the facility's inmates, about chunk_size each."""
    with sql.cursor() as cursor:
        cursor.execute(
            "SELECT MIN(id), MAX(id), COUNT(*) FROM facilities_inmate WHERE facility_id = %s",
            [facility_id],
        )
        low, high, count = cursor.fetchone()
    if not count:
        return [], 0
    span = high - low + 1
    step = max(1, span * chunk_size // count)
    return [(start - 1, min(start - 1 + step, high)) for start in range(low, high + 1, step)], count


# --- monthly rollover -------------------------------------------------------------------


def roll_over_facility(
    *,
    facility_id: int,
    now: dt.datetime | None = None,
    trigger: str = "schedule",
    chunk_size: int | None = None,
) -> ScheduledRun:
    """Close the facility's periods of ended months and open this month's period for every
    active inmate, in the facility's own timezone. Each chunk of inmates (``chunk_size``, by
    default the LEDGER_ROLLOVER_CHUNK_SIZE setting) is one short transaction; a re-run (late,
    twice, or after a crash) finds the work done and adds nothing.
    """
    now = now or timezone.now()
    chunk_size = chunk_size or settings.LEDGER_ROLLOVER_CHUNK_SIZE
    facility = Facility.objects.get(pk=facility_id)
    month = facility.local_month(now)
    with recorded_run(
        kind=ScheduledRun.Kind.ROLLOVER, facility=facility, month=month, trigger=trigger, now=now
    ) as run:
        return _roll_over(run, facility, month, chunk_size, now)


def _roll_over(run, facility, month, chunk_size, now) -> ScheduledRun:
    facility_id = facility.pk
    chunks, inmates = inmate_id_chunks(facility_id, chunk_size)
    run.progress_total = inmates
    ScheduledRun.objects.filter(pk=run.pk).update(progress_total=inmates)
    closed = opened = 0
    last_id = 0
    while True:
        # Ended months close in id order, a chunk per short transaction, so a late credit to
        # last month's period never waits behind one update of every period at once.
        with transaction.atomic(), sql.cursor() as cursor:
            cursor.execute(
                "UPDATE ledger_monthlyperiod SET closed_at = %s WHERE id IN ("
                " SELECT id FROM ledger_monthlyperiod WHERE facility_id = %s AND month < %s"
                " AND closed_at IS NULL AND id > %s ORDER BY id LIMIT %s) RETURNING id",
                [now, facility_id, month, last_id, chunk_size],
            )
            closed_ids = [row[0] for row in cursor.fetchall()]
        if not closed_ids:
            break
        closed += len(closed_ids)
        last_id = max(closed_ids)
        chunk_pause()
    for low, high in chunks:
        with transaction.atomic(), sql.cursor() as cursor:
            cursor.execute(
                "INSERT INTO ledger_monthlyperiod "
                "(inmate_id, facility_id, month, received_fen, reserved_fen, cap_fen) "
                "SELECT i.id, i.facility_id, %s, 0, 0, %s FROM facilities_inmate i "
                "WHERE i.facility_id = %s AND i.status = 'active' AND i.id > %s AND i.id <= %s "
                "ON CONFLICT (inmate_id, month) DO NOTHING",
                [month, facility.monthly_cap_fen, facility_id, low, high],
            )
            opened += cursor.rowcount
            run.progress_done = min(inmates, run.progress_done + (high - low))
            ScheduledRun.objects.filter(pk=run.pk).update(progress_done=run.progress_done)
        chunk_pause()
    run.progress_done = inmates
    run.counts = {"periods_closed": closed, "periods_opened": opened}
    finish_run(run)
    log.info("rollover %s %s: closed %s, opened %s", facility.code, month, closed, opened)
    return run


def roll_over_periods(
    *, timezone_name: str | None = None, now: dt.datetime | None = None, trigger: str = "schedule"
) -> list[ScheduledRun]:
    """Roll over every facility in one timezone (the scheduler fires once per timezone, at
    00:05 local on the 1st), or every facility when no timezone is given."""
    facilities = Facility.objects.order_by("id")
    if timezone_name:
        facilities = facilities.filter(timezone=timezone_name)
    return [
        roll_over_facility(facility_id=facility_id, now=now, trigger=trigger)
        for facility_id in facilities.values_list("id", flat=True)
    ]


# --- expiry of unpaid deposits ------------------------------------------------------------


def expire_stale_deposits(
    *, now: dt.datetime | None = None, chunk_size: int = 1_000, trigger: str = "schedule"
) -> ScheduledRun:
    """Expire deposits whose payment did not arrive in time and give their room under both
    caps back. Each chunk locks the inmates' spendable rows (in id order, the same lock the
    money services take first), then moves deposits, periods and pending money set-based."""
    now = now or timezone.now()
    with recorded_run(kind=ScheduledRun.Kind.EXPIRY, trigger=trigger, now=now) as run:
        expired = 0
        while True:
            with transaction.atomic(), sql.cursor() as cursor:
                lock = "FOR UPDATE" if connection.features.has_select_for_update else ""
                cursor.execute(
                    f"""
                    SELECT a.inmate_id FROM ledger_account a
                    WHERE a.kind = 'spendable' AND a.inmate_id IN (
                        SELECT d.inmate_id FROM ledger_deposit d
                        WHERE d.status = 'created' AND d.expires_at < %s
                        ORDER BY d.inmate_id LIMIT %s)
                    ORDER BY a.id {lock}
                    """,  # noqa: S608 - a constant lock clause; values are bound
                    [now, chunk_size],
                )
                inmate_ids = [row[0] for row in cursor.fetchall()]
                if not inmate_ids:
                    break
                in_list = ", ".join(["%s"] * len(inmate_ids))
                cursor.execute(
                    f"UPDATE ledger_deposit SET status = 'expired', resolved_at = %s "  # noqa: S608 - placeholders only; values are bound
                    f"WHERE status = 'created' AND expires_at < %s AND inmate_id IN ({in_list}) "
                    f"RETURNING inmate_id, period_id, amount_fen",
                    [now, now, *inmate_ids],
                )
                by_period, by_inmate = defaultdict(int), defaultdict(int)
                for inmate_id, period_id, amount_fen in cursor.fetchall():
                    by_period[period_id] += amount_fen
                    by_inmate[inmate_id] += amount_fen
                    expired += 1
                for table, column, key, amounts in (
                    ("ledger_monthlyperiod", "reserved_fen", "id", by_period),
                    ("ledger_account", "pending_fen", "inmate_id", by_inmate),
                ):
                    cases = " ".join("WHEN %s THEN %s" for _ in amounts)
                    kind_filter = " AND kind = 'spendable'" if table == "ledger_account" else ""
                    cursor.execute(
                        f"UPDATE {table} SET {column} = {column} - CASE {key} {cases} ELSE 0 END "  # noqa: S608 - names from the constant tuple above, placeholders; values bound
                        f"WHERE {key} IN ({', '.join(['%s'] * len(amounts))}){kind_filter}",
                        [v for pair in amounts.items() for v in pair] + list(amounts),
                    )
            chunk_pause()
        run.counts = {"deposits_expired": expired}
        run.progress_done = run.progress_total = expired
        finish_run(run)
        return run


# --- reconciliation -----------------------------------------------------------------------


def reconcile_ledger(
    *, trigger: str = "schedule", now: dt.datetime | None = None, exact: bool = False
) -> ScheduledRun:
    """Run every reconciliation check, store each finding, and email each affected
    facility's trust-alert addresses. Never changes money. ``exact`` runs every check's exact
    query instead of screening first (see ``ledger.reconciliation``)."""
    now = now or timezone.now()
    with recorded_run(kind=ScheduledRun.Kind.RECONCILIATION, trigger=trigger, now=now) as run:
        findings = run_checks(now=now, exact=exact)
        ReconciliationFinding.objects.bulk_create(
            ReconciliationFinding(
                run=run,
                check_name=f.check,
                facility_id=f.facility_id,
                subject=f.subject,
                expected=str(f.expected),
                actual=str(f.actual),
            )
            for f in findings
        )
        run.counts = {"findings": len(findings), "mode": "exact" if exact else "screened"}
        finish_run(
            run,
            status=ScheduledRun.Status.FOUND_PROBLEMS
            if findings
            else ScheduledRun.Status.SUCCEEDED,
        )
        if findings:
            _alert_facilities(run, findings)
        return run


def _alert_facilities(run: ScheduledRun, findings) -> None:
    by_facility = defaultdict(list)
    for finding in findings:
        by_facility[finding.facility_id].append(finding)
    if None in by_facility:
        # A disagreement of the whole ledger belongs to no facility: the operators hear of it.
        lines = [f"- {f.check}: expected {f.expected}, found {f.actual}" for f in by_facility[None]]
        log.error(
            "reconciliation run %s: the whole ledger disagrees:\n%s", run.pk, "\n".join(lines)
        )
        mail_admins(
            subject=f"Reconciliation run #{run.pk}: the whole ledger disagrees",
            message="\n".join(lines) + "\n\nNothing was changed. See the run in the admin.",
        )
    for facility in Facility.objects.filter(pk__in=[pk for pk in by_facility if pk]):
        recipients = facility.trust_alert_recipients
        if not recipients:
            log.warning(
                "reconciliation found problems at %s, which has no alert address", facility.code
            )
            continue
        lines = [
            f"- {f.check}: {f.subject}: expected {f.expected}, found {f.actual}"
            for f in by_facility[facility.pk]
        ]
        send_mail(
            subject=f"[Commissary] Reconciliation found {len(lines)} problem(s) at {facility.name}",
            message=(
                f"Reconciliation run #{run.pk} at {run.started_at:%Y-%m-%d %H:%M} UTC found:\n\n"
                + "\n".join(lines)
                + "\n\nNothing was changed. See the run in the admin under Trust ledger."
            ),
            from_email=None,
            recipient_list=recipients,
        )
