"""Detaching the journal's oldest month for archive, and the totals that stand in for it.

Guards one invariant: every sum the journal proves is the same after a month leaves it. A
detach stores, in the same transaction, each account's total over the month
(``ArchivedAccountTotal``); the whole-journal sums add those totals back (account balances in
reconciliation, statement openings, trust balances, system-account balances), and the checks
that join transactions to their entries skip the transactions dated before the archived
months, which keep their rows but no longer their entries. The same transaction keeps day
totals (``ArchivedDayTotal``) of the accounts whose days the reports read, so the trust balance
at a day inside the month and its daily sales and fees read the same too
(``ledger.selectors.day_totals``, ``inmate_balances_before``).

Only the oldest attached month goes, only one that ended before last month began (so last
month's statements, refunds and reports still read their entries), only after a reconciliation
run that started after the month ended found nothing (so the totals kept are of a ledger known
to agree with itself), and only with nothing of it left in the DEFAULT partition. The
partition stays in the database as a table of its own, ``ledger_entry_pYYYYMM``: the archive
is ``pg_dump`` of that table, then ``DROP TABLE`` (docs/operations.md).

SQLite has no partitions and nothing to detach; its archived-month tables stay empty.
"""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import OperationalError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commissary.errors import DomainError

from . import partitions
from .models import Account, ArchivedJournalMonth, ScheduledRun

# No month archived: every transaction is dated after this.
NOTHING_ARCHIVED = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
# How long a detach keeps trying to lock the journal between postings, and how often.
LOCK_ATTEMPT_SECONDS = 10
LOCK_ATTEMPT_PAUSE_SECONDS = 0.05


class DetachRefused(DomainError):
    code = "detach_refused"
    default_message = gettext_lazy("This month of the journal cannot be detached.")


class MonthArchived(DomainError):
    code = "month_archived"
    default_message = gettext_lazy("That month's entries are archived.")


@dataclass(frozen=True)
class DetachPlan:
    month: dt.date
    table_name: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    reconciliation_run: ScheduledRun


def archived_before(using: str | None = None) -> dt.datetime:
    """The end of the newest archived month: transactions dated before it have no entries in
    the journal, their accounts' totals are in ``ArchivedAccountTotal``."""
    months = ArchivedJournalMonth.objects.using(using) if using else ArchivedJournalMonth.objects
    return months.aggregate(end=Max("ends_at"))["end"] or NOTHING_ARCHIVED


def plan_detach(*, month: dt.date | None = None, now: dt.datetime | None = None) -> DetachPlan:
    """What a detach would do, or ``DetachRefused`` saying why it may not."""
    if not partitions.is_partitioned():
        raise DetachRefused(
            _(
                "The journal is partitioned by month only on PostgreSQL: this database has "
                "no month to detach."
            )
        )
    attached = partitions.attached_months()
    if not attached:
        raise DetachRefused(_("The journal has no month partition to detach."))
    oldest = attached[0]
    if month is not None and month != oldest:
        raise DetachRefused(
            _(
                "Only the oldest month, %(oldest)s, can be detached: months leave the journal "
                "in order."
            )
            % {"oldest": f"{oldest:%Y-%m}"}
        )
    this_month = partitions.month_of(now or timezone.now())
    if oldest >= partitions.add_months(this_month, -1):
        raise DetachRefused(
            _(
                "%(month)s is too recent: only a month that ended before last month began "
                "can be detached."
            )
            % {"month": f"{oldest:%Y-%m}"}
        )
    starts_at = partitions.month_start(oldest)
    ends_at = partitions.month_start(partitions.add_months(oldest, 1))
    run = (
        ScheduledRun.objects.filter(kind=ScheduledRun.Kind.RECONCILIATION)
        .exclude(status__in=[ScheduledRun.Status.RUNNING, ScheduledRun.Status.ABANDONED])
        .order_by("-started_at")
        .first()
    )
    if run is None or run.started_at < ends_at:
        raise DetachRefused(
            _(
                "No reconciliation run has finished since %(month)s ended: run reconciliation "
                "and let it come out clean first."
            )
            % {"month": f"{oldest:%Y-%m}"}
        )
    if run.status != ScheduledRun.Status.SUCCEEDED:
        raise DetachRefused(
            _(
                "The latest reconciliation run (%(started)s) did not come out clean: resolve "
                "what it found and run it again first."
            )
            % {"started": f"{run.started_at:%Y-%m-%d %H:%M}"}
        )
    left_behind = _default_partition_entries_before(ends_at)
    if left_behind:
        raise DetachRefused(
            _(
                "The default partition still holds %(count)d entries dated before %(month)s "
                "ended: they must be in their month's partition first."
            )
            % {"count": left_behind, "month": f"{oldest:%Y-%m}"}
        )
    return DetachPlan(oldest, partitions.partition_name(oldest), starts_at, ends_at, run)


def month_figures(plan: DetachPlan) -> tuple[int, int, int, int]:
    """(entries, accounts, sum in fen, newest entry id) of the month's partition; the sum is
    zero on a sound journal."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT account_id), COALESCE(SUM(amount_fen), 0), "  # noqa: S608 - the name is built from a date
            f"COALESCE(MAX(id), 0) FROM {plan.table_name}"
        )
        return tuple(map(int, cursor.fetchone()))


def detach_oldest_month(
    *,
    month: dt.date | None = None,
    now: dt.datetime | None = None,
    report: Callable[[str], None] = lambda message: None,
    by: str = "",
) -> ArchivedJournalMonth:
    """Detach the oldest month of the journal, keeping its per-account totals, in one
    transaction; ``report`` hears each step, ``by`` names who ran it (kept with the month).
    Refuses (``DetachRefused``) as ``plan_detach`` does, and when the month's entries do not
    sum to zero."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        plan = plan_detach(month=month, now=now)
        # Summed (and the totals stored, below) before the journal is locked, so postings wait
        # only for the DETACH itself.
        # The sums and the newest id are read by one statement; the entries are append-only
        # and their ids come from one sequence, so an unchanged newest id under the lock below
        # proves nothing was added to the month since.
        report(_("Summing the entries of %(month)s…") % {"month": f"{plan.month:%Y-%m}"})
        entries, accounts, sum_fen, newest_id = month_figures(plan)
        if sum_fen != 0:
            raise DetachRefused(
                _("The entries of %(month)s do not sum to zero: it is not detached.")
                % {"month": f"{plan.month:%Y-%m}"}
            )
        cursor.execute(
            "CREATE TEMPORARY TABLE archived_month_totals ON COMMIT DROP AS "  # noqa: S608 - the name is built from a date
            f"SELECT account_id, SUM(amount_fen) AS amount_fen FROM {plan.table_name} "
            "GROUP BY account_id"
        )
        cursor.execute(
            DAY_TOTALS_SQL.format(table=plan.table_name),  # the name is built from a date
            _day_totals_parameters(plan),
        )
        # The totals are stored before the journal is locked too: storing them is most of a
        # detach's time (about 40 s at a million inmates, docs/benchmarks.md). Their
        # foreign-key checks run as they are inserted (not deferred to the lock below, where
        # they would hold up the postings): they take only FOR KEY SHARE on the account rows,
        # which postings' FOR NO KEY UPDATE (ledger.locks) does not wait on. If an entry of
        # the month arrives meanwhile, the check under the lock refuses and all is rolled back.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        archived = ArchivedJournalMonth.objects.create(
            month=plan.month,
            starts_at=plan.starts_at,
            ends_at=plan.ends_at,
            table_name=plan.table_name,
            entry_count=entries,
            reconciliation_run=plan.reconciliation_run,
            detached_at=now,
            detached_by=by[:150],
            has_day_totals=True,
        )
        cursor.execute(
            "INSERT INTO ledger_archivedaccounttotal (archived_month_id, account_id, amount_fen) "
            "SELECT %s, account_id, amount_fen FROM archived_month_totals",
            [archived.pk],
        )
        cursor.execute(
            "INSERT INTO ledger_archiveddaytotal "
            "(archived_month_id, account_id, day, starts_at, ends_at, amount_fen) "
            "SELECT %s, account_id, day, starts_at, ends_at, amount_fen FROM archived_day_totals",
            [archived.pk],
        )
        day_totals = cursor.rowcount
        report(_("Detaching %(table)s from the journal…") % {"table": plan.table_name})
        _lock_the_journal()
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {plan.table_name}")  # noqa: S608 - the name is built from a date
        if cursor.fetchone()[0] != newest_id:
            raise DetachRefused(
                _("An entry of %(month)s was added while it was summed: it is not detached.")
                % {"month": f"{plan.month:%Y-%m}"}
            )
        cursor.execute(f"ALTER TABLE {partitions.PARENT} DETACH PARTITION {plan.table_name}")
        # With the journal locked, nothing can have reached the default partition for the
        # month since the plan was made.
        if _default_partition_entries_before(plan.ends_at):
            raise DetachRefused(
                _("An entry of %(month)s reached the default partition: it is not detached.")
                % {"month": f"{plan.month:%Y-%m}"}
            )
        report(
            _("Kept the totals of %(accounts)d accounts over %(entries)d entries.")
            % {"accounts": accounts, "entries": entries}
        )
        report(
            _("Kept %(count)d day totals for the sales, fees and trust balances of its days.")
            % {"count": day_totals}
        )
    return archived


# The accounts whose days the reports read (``reports.selectors``): the trust balance at a day
# sums the inmates' accounts, the daily sales and fees the facility's own.
DAY_TOTAL_KINDS = (
    Account.Kind.SPENDABLE,
    Account.Kind.HELD,
    Account.Kind.SALES,
    Account.Kind.FEES,
)

# Each such account's entries summed per day of its facility's timezone, with the instants the
# day covers inside the month (a timestamp without zone AT TIME ZONE is that local time's
# instant). Summed before the journal is locked, like the account totals.
DAY_TOTALS_SQL = """
CREATE TEMPORARY TABLE archived_day_totals ON COMMIT DROP AS
SELECT e.account_id, local.day,
       GREATEST(local.day::timestamp AT TIME ZONE f.timezone, %(starts_at)s) AS starts_at,
       LEAST((local.day + 1)::timestamp AT TIME ZONE f.timezone, %(ends_at)s) AS ends_at,
       SUM(e.amount_fen) AS amount_fen
FROM {table} e
JOIN ledger_account a ON a.id = e.account_id
JOIN facilities_facility f ON f.id = a.facility_id
CROSS JOIN LATERAL (SELECT (e.created_at AT TIME ZONE f.timezone)::date AS day) local
WHERE a.kind = ANY(%(kinds)s)
GROUP BY e.account_id, local.day, f.timezone
"""


def _day_totals_parameters(plan: DetachPlan) -> dict:
    return {
        "starts_at": plan.starts_at,
        "ends_at": plan.ends_at,
        "kinds": [str(kind) for kind in DAY_TOTAL_KINDS],
    }


def _lock_the_journal() -> None:
    """Take, all at once and without waiting, every lock the DETACH needs, or none.

    DETACH locks the journal (ACCESS EXCLUSIVE) and the tables its foreign keys point at (the
    accounts and transactions), and the totals' own foreign keys lock account rows. A
    posting takes its locks in another order (accounts first, entries later, their foreign
    keys checked at commit), so a detach that waited for one lock while holding another could
    deadlock with a posting, and the database might abort the posting. So each attempt asks
    for all of them with NOWAIT and gives back what it got when one is busy; the postings
    never wait behind a half-locked detach. EXCLUSIVE on the accounts also keeps any posting
    from holding an account row lock once the attempt succeeds. The totals stored before this
    hold FOR KEY SHARE on their account rows, which the postings' FOR NO KEY UPDATE does not
    wait on."""
    deadline = time.monotonic() + LOCK_ATTEMPT_SECONDS
    while True:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE ledger_account IN EXCLUSIVE MODE NOWAIT")
                cursor.execute("LOCK TABLE ledger_transaction IN EXCLUSIVE MODE NOWAIT")
                cursor.execute(f"LOCK TABLE {partitions.PARENT} IN ACCESS EXCLUSIVE MODE NOWAIT")
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            return
        except OperationalError as busy:
            if time.monotonic() > deadline:
                raise DetachRefused(
                    _(
                        "The journal stayed busy with postings for %(seconds)d seconds: "
                        "nothing was detached; try again at a quieter time."
                    )
                    % {"seconds": LOCK_ATTEMPT_SECONDS}
                ) from busy
            time.sleep(LOCK_ATTEMPT_PAUSE_SECONDS)


def _default_partition_entries_before(instant: dt.datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {partitions.DEFAULT_PARTITION} WHERE created_at < %s",  # noqa: S608 - constant name
            [instant],
        )
        return cursor.fetchone()[0]
