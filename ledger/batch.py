"""Scheduled money work as services: monthly rollover, expiry of unpaid deposits,
reconciliation runs and monthly statements. Celery tasks in ``ledger.tasks`` only call these.

Everything here is set-based SQL over chunks of rows (never one Python object per inmate held
at once), idempotent (a re-run after a crash or a duplicate delivery changes nothing more), and
records what it did in a ``ScheduledRun`` for the admin. Guards invariants 4 and 8: because a
period's month is part of its key and every deposit creates its own month's row, a rollover
that runs late, twice or never cannot let money past a cap nor block a deposit; reconciliation
reports and never changes money. Raw statements go through ``ledger.sql``, so instants compare
as instants on the embedded SQLite database too.

About 410 lines: rollover, expiry, reconciliation and statements share the chunked-run
machinery (``ledger.chunks``) and the SQL helpers; each job is short.
"""

import datetime as dt
import logging
from collections import defaultdict

from django.conf import settings
from django.core.mail import mail_admins, send_mail
from django.db import connection, transaction
from django.utils import timezone

from facilities.models import Facility

from . import chunks, sql
from .chunks import Claim, Job, Piece, chunk_pause, finish_run, recorded_run, summed
from .models import ReconciliationFinding, ScheduledRun
from .reconciliation import CHECKS, Finding, run_checks

__all__ = ["chunk_pause", "finish_run", "recorded_run"]  # shared with statements and payments

log = logging.getLogger(__name__)

# Past every inmate id: the last chunk of a run reaches it, so the chunks cover every id.
LAST_ID = 2**63 - 1


def inmate_id_chunks(facility_id: int, chunk_size: int):
    """(low, high] inmate-id ranges, each holding ``chunk_size`` of the facility's inmates
    (the last one the rest), and how many inmates the facility has."""
    with sql.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n"
            " FROM facilities_inmate WHERE facility_id = %s) numbered"
            " WHERE n %% %s = 0 ORDER BY id",
            [facility_id, chunk_size],
        )
        bounds = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT MAX(id), COUNT(*) FROM facilities_inmate WHERE facility_id = %s", [facility_id]
        )
        high, count = cursor.fetchone()
    if not count:
        return [], 0
    if not bounds or bounds[-1] != high:
        bounds.append(high)
    return list(zip([0, *bounds[:-1]], bounds, strict=True)), count


def _covering(ranges: list[tuple[int, int]], count: int, chunk_size: int) -> list[Piece]:
    """The ranges as chunks, the first from id 0 and the last to LAST_ID, so together they
    cover every inmate id (a transferred inmate's old period is closed by the facility's
    rollover whatever its id); one chunk over everything when there are no ranges."""
    if not ranges:
        return [Piece(0, LAST_ID, size=0)]
    sizes = [chunk_size] * (len(ranges) - 1) + [count - chunk_size * (len(ranges) - 1)]
    pieces = [Piece(low, high, size=size) for (low, high), size in zip(ranges, sizes, strict=True)]
    pieces[-1] = Piece(pieces[-1].low_id, LAST_ID, size=pieces[-1].size)
    return pieces


def start_chunked_run(*, pieces_of, **run_fields) -> ScheduledRun:
    """Record a run and its chunks. ``pieces_of(run)`` returns the chunks and the run's
    progress total; a failure there fails the run."""
    with recorded_run(**run_fields) as run:
        with transaction.atomic():
            pieces, run.progress_total = pieces_of(run)
            ScheduledRun.objects.filter(pk=run.pk).update(
                progress_total=run.progress_total, counts=run.counts
            )
            chunks.plan(run, pieces)
        return run


def run_here(run: ScheduledRun) -> ScheduledRun:
    """Do every chunk of a run in this process (the synchronous path: the admin's shell,
    the tests, a single worker) and return the run as it ended."""
    chunks.work_through(run.pk)
    run.refresh_from_db()
    return run


# --- monthly rollover -------------------------------------------------------------------


def start_rollover(
    *,
    facility_id: int,
    now: dt.datetime | None = None,
    trigger: str = "schedule",
    chunk_size: int | None = None,
) -> ScheduledRun:
    """Plan the facility's rollover for this month (in its own timezone) as chunks of
    ``chunk_size`` inmates (default: the LEDGER_ROLLOVER_CHUNK_SIZE setting)."""
    now = now or timezone.now()
    chunk_size = chunk_size or settings.LEDGER_ROLLOVER_CHUNK_SIZE
    facility = Facility.objects.get(pk=facility_id)

    def pieces_of(run):
        ranges, inmates = inmate_id_chunks(facility_id, chunk_size)
        return _covering(ranges, inmates, chunk_size), inmates

    return start_chunked_run(
        pieces_of=pieces_of,
        kind=ScheduledRun.Kind.ROLLOVER,
        facility=facility,
        month=facility.local_month(now),
        trigger=trigger,
        now=now,
    )


def roll_over_facility(
    *,
    facility_id: int,
    now: dt.datetime | None = None,
    trigger: str = "schedule",
    chunk_size: int | None = None,
) -> ScheduledRun:
    """Close the facility's periods of ended months and open this month's period for every
    active inmate, in the facility's own timezone. Each chunk of inmates is one short
    transaction; a re-run (late, twice, or after a crash) finds the work done and adds
    nothing."""
    return run_here(
        start_rollover(facility_id=facility_id, now=now, trigger=trigger, chunk_size=chunk_size)
    )


def _roll_over_chunk(run: ScheduledRun, claim: Claim, _prepared) -> dict:
    """One chunk of inmates: their periods of ended months close, and each active one gets
    this month's period (ON CONFLICT: a period a deposit or an earlier run made stays)."""
    facility = run.facility
    with sql.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_monthlyperiod SET closed_at = %s WHERE facility_id = %s"
            " AND month < %s AND closed_at IS NULL AND inmate_id > %s AND inmate_id <= %s",
            [run.started_at, facility.pk, run.month, claim.low_id, claim.high_id],
        )
        closed = cursor.rowcount
        cursor.execute(
            "INSERT INTO ledger_monthlyperiod "
            "(inmate_id, facility_id, month, received_fen, reserved_fen, cap_fen) "
            "SELECT i.id, i.facility_id, %s, 0, 0, %s FROM facilities_inmate i "
            "WHERE i.facility_id = %s AND i.status = 'active' AND i.id > %s AND i.id <= %s "
            "ON CONFLICT (inmate_id, month) DO NOTHING",
            [run.month, facility.monthly_cap_fen, facility.pk, claim.low_id, claim.high_id],
        )
        opened = cursor.rowcount
    return {"periods_closed": closed, "periods_opened": opened}


def _finish_rollover(run: ScheduledRun, counts: list[dict]) -> None:
    run.counts = summed(counts, ["periods_closed", "periods_opened"])
    run.progress_done = run.progress_total
    finish_run(run)
    log.info(
        "rollover %s %s: closed %s, opened %s",
        run.facility.code,
        run.month,
        run.counts["periods_closed"],
        run.counts["periods_opened"],
    )


chunks.register_job(
    ScheduledRun.Kind.ROLLOVER, Job(apply=_roll_over_chunk, finish=_finish_rollover)
)


def facilities_in(timezone_name: str | None) -> list[int]:
    facilities = Facility.objects.order_by("id")
    if timezone_name:
        facilities = facilities.filter(timezone=timezone_name)
    return list(facilities.values_list("id", flat=True))


def roll_over_periods(
    *, timezone_name: str | None = None, now: dt.datetime | None = None, trigger: str = "schedule"
) -> list[ScheduledRun]:
    """Roll over every facility in one timezone (the scheduler fires once per timezone, at
    00:05 local on the 1st), or every facility when no timezone is given."""
    return [
        roll_over_facility(facility_id=facility_id, now=now, trigger=trigger)
        for facility_id in facilities_in(timezone_name)
    ]


# --- expiry of unpaid deposits ------------------------------------------------------------


def start_expiry(
    *, now: dt.datetime | None = None, chunk_size: int | None = None, trigger: str = "schedule"
) -> ScheduledRun:
    """Plan the expiry of deposits whose payment did not arrive in time: chunks of about
    ``chunk_size`` inmates (default: the LEDGER_EXPIRY_CHUNK_SIZE setting) among those with
    such deposits (the last chunk reaching every later id, so a deposit gone stale since is not
    left out); none when there is nothing."""
    now = now or timezone.now()
    chunk_size = chunk_size or settings.LEDGER_EXPIRY_CHUNK_SIZE

    def pieces_of(run):
        stale = "SELECT DISTINCT inmate_id FROM ledger_deposit WHERE status = 'created'"
        with sql.cursor() as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM ({stale} AND expires_at < %s) stale",  # noqa: S608 - constant SQL; values are bound
                [now],
            )
            if not cursor.fetchone()[0]:
                return [], 0
            cursor.execute(
                "SELECT inmate_id FROM (SELECT inmate_id, ROW_NUMBER() OVER"  # noqa: S608 - constant SQL; values are bound
                f" (ORDER BY inmate_id) AS n FROM ({stale} AND expires_at < %s) stale) numbered"
                " WHERE n %% %s = 0 ORDER BY inmate_id",
                [now, chunk_size],
            )
            bounds = [row[0] for row in cursor.fetchall()]
        lows, highs = [0, *bounds], [*bounds, LAST_ID]
        return [Piece(low, high, size=0) for low, high in zip(lows, highs, strict=True)], 0

    return start_chunked_run(
        pieces_of=pieces_of, kind=ScheduledRun.Kind.EXPIRY, trigger=trigger, now=now
    )


def expire_stale_deposits(
    *, now: dt.datetime | None = None, chunk_size: int | None = None, trigger: str = "schedule"
) -> ScheduledRun:
    """Expire deposits whose payment did not arrive in time and give their room under both
    caps back, a chunk of inmates per short transaction."""
    return run_here(start_expiry(now=now, chunk_size=chunk_size, trigger=trigger))


def _expire_chunk(run: ScheduledRun, claim: Claim, _prepared) -> dict:
    """Lock the chunk's inmates with stale deposits (their spendable rows in id order, the
    same lock the money services take first), then move deposits, periods and pending money
    set-based. Deposits already resolved are left alone, so a chunk done again expires
    nothing twice."""
    now = run.started_at
    expired = 0
    with sql.cursor() as cursor:
        lock = "FOR UPDATE" if connection.features.has_select_for_update else ""
        cursor.execute(
            f"""
            SELECT a.inmate_id FROM ledger_account a
            WHERE a.kind = 'spendable' AND a.inmate_id IN (
                SELECT d.inmate_id FROM ledger_deposit d
                WHERE d.status = 'created' AND d.expires_at < %s
                AND d.inmate_id > %s AND d.inmate_id <= %s)
            ORDER BY a.id {lock}
            """,  # noqa: S608 - a constant lock clause; values are bound
            [now, claim.low_id, claim.high_id],
        )
        inmate_ids = [row[0] for row in cursor.fetchall()]
        if not inmate_ids:
            return {"deposits_expired": 0}
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
            if not amounts:
                continue
            cases = " ".join("WHEN %s THEN %s" for _ in amounts)
            kind_filter = " AND kind = 'spendable'" if table == "ledger_account" else ""
            cursor.execute(
                f"UPDATE {table} SET {column} = {column} - CASE {key} {cases} ELSE 0 END "  # noqa: S608 - names from the constant tuple above, placeholders; values bound
                f"WHERE {key} IN ({', '.join(['%s'] * len(amounts))}){kind_filter}",
                [v for pair in amounts.items() for v in pair] + list(amounts),
            )
    return {"deposits_expired": expired}


def _finish_expiry(run: ScheduledRun, counts: list[dict]) -> None:
    run.counts = summed(counts, ["deposits_expired"])
    run.progress_done = run.progress_total = run.counts["deposits_expired"]
    finish_run(run)


chunks.register_job(ScheduledRun.Kind.EXPIRY, Job(apply=_expire_chunk, finish=_finish_expiry))


# --- reconciliation -----------------------------------------------------------------------


def start_reconciliation(
    *, trigger: str = "schedule", now: dt.datetime | None = None, exact: bool = False
) -> ScheduledRun:
    """Plan a reconciliation run: one chunk per check. Each check reads one snapshot of its
    own (its screen's two sides and its exact query agree with each other, which is all a
    check needs; the checks are independent)."""
    now = now or timezone.now()

    def pieces_of(run):
        run.counts = {"mode": "exact" if exact else "screened"}
        return [Piece(label=check.name, size=1) for check in CHECKS], len(CHECKS)

    return start_chunked_run(
        pieces_of=pieces_of, kind=ScheduledRun.Kind.RECONCILIATION, trigger=trigger, now=now
    )


def reconcile_ledger(
    *, trigger: str = "schedule", now: dt.datetime | None = None, exact: bool = False
) -> ScheduledRun:
    """Run every reconciliation check, store each finding, and email each affected
    facility's trust-alert addresses. Never changes money. ``exact`` runs every check's exact
    query instead of screening first (see ``ledger.reconciliation``)."""
    return run_here(start_reconciliation(trigger=trigger, now=now, exact=exact))


def _check_findings(run: ScheduledRun, claim: Claim) -> list[Finding]:
    """The chunk's check, in its own read-only snapshot, before the chunk's transaction."""
    [check] = [check for check in CHECKS if check.name == claim.label]
    return run_checks(now=run.started_at, checks=[check], exact=run.counts["mode"] == "exact")


def _store_findings(run: ScheduledRun, claim: Claim, findings: list[Finding]) -> dict:
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
    return {"findings": len(findings)}


def _finish_reconciliation(run: ScheduledRun, counts: list[dict]):
    run.counts = {**summed(counts, ["findings"]), "mode": run.counts["mode"]}
    run.progress_done = run.progress_total
    found = run.counts["findings"]
    finish_run(
        run, status=ScheduledRun.Status.FOUND_PROBLEMS if found else ScheduledRun.Status.SUCCEEDED
    )
    if not found:
        return None
    findings = [
        Finding(f.check_name, f.facility_id, f.subject, f.expected, f.actual)
        for f in run.findings.order_by("pk")
    ]
    return lambda: _alert_facilities(run, findings)


chunks.register_job(
    ScheduledRun.Kind.RECONCILIATION,
    Job(prepare=_check_findings, apply=_store_findings, finish=_finish_reconciliation),
)


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
