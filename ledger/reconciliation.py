"""Reconciliation checks: does the journal agree with itself, the cached balances, the caps,
the periods and the deposits? Guards invariant 8 by reporting, never by fixing.

Each check is one independent set-based query over the whole ledger that returns findings
``(facility, subject, expected, actual)``; a clean ledger gives none. The ledger's own checks are
written here; an app above the ledger adds its own with ``register_check`` from its
``AppConfig.ready`` (payments adds the provider's settlements), so the ledger never imports it.

The four checks that would group or join the whole journal carry a *screen* as well: two
queries, each a plain sum over one table (or, for deposits, one join), that agree on a sound
ledger. Every row is weighted by a pseudo-random odd number drawn from a seed that is new for
every run, so the two sides are random linear combinations of the same quantities: any single
discrepancy changes one side and not the other, and several discrepancies cancel only if the
weights happen to satisfy an equation fixed before the seed was drawn: with 2**29 possible
weights, about two chances in a billion per run for weights that behave as random (PostgreSQL's
seeded hash is not a cryptographic one), and a new draw every night. Only when a screen's sides
differ does its exact query run, to name the rows; if the exact query then finds nothing,
the disagreement itself is reported. ``run_checks(exact=True)`` skips the screens.

PostgreSQL runs each ``run_checks`` call in one read-only REPEATABLE READ snapshot, so the two
sides of a screen and the exact query see the ledger as of one instant while payments go on. A
scheduled run calls it once per check (each check a chunk that any worker may take,
``ledger.batch``): every check is complete in itself, so each needs only its own snapshot.

With a read replica fit for reads that can wait (``commissary.replica``), the run reads there
first, snapshot rules and all (a standby keeps them); only the checks that found something on
the replica run again on the primary, and only what the primary finds is reported. A finding is
thus always confirmed on the primary, and a clean ledger costs the primary nothing. A replica
that fails during the run is given up, and the whole run reads the primary.
"""

import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, DatabaseError, DataError, connections, transaction
from django.utils import timezone

from commissary import replica

from . import archive, sql
from .schedules import expiry_interval

logger = logging.getLogger(__name__)

# Time for a run of the expiry task to be queued and done, on top of its interval.
EXPIRY_RUN_SLACK = dt.timedelta(minutes=1)


def weight(expression: str) -> str:
    """SQL for a pseudo-random odd weight in [1, 2**30) for each value of ``expression``,
    keyed by the run's seed. Weights stay below 2**30 so that a weighted amount (any amount
    below 2**33 fen) fits a bigint; ``SUM`` of bigints is exact."""
    return f"((hashint8extended({expression}, %(seed)s) & 1073741823) | 1)"


def pair_weight(first: str, second: str) -> str:
    """A weight for each pair of values: both must match for two rows to weigh the same."""
    return (
        f"(((hashint8extended({first}, %(seed)s) # hashint8extended({second}, %(seed)s + 1))"
        f" & 1073741823) | 1)"
    )


@dataclass(frozen=True)
class Finding:
    check: str
    facility_id: int | None
    subject: str
    expected: int | str
    actual: int | str


@dataclass(frozen=True)
class Screen:
    """Two queries, each returning one row, that are equal on a sound ledger."""

    one_side: str
    other_side: str


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    sql: str
    subject: str  # what the second column names: "transaction", "account", "period", "deposit"
    screen: Screen | None = None


# The ledger's own checks, then those registered by the apps above it (``register_check``).
CHECKS: list[Check] = [
    Check(
        "transaction_unbalanced",
        "Every transaction's entries sum to zero, and every transaction has entries (but those "
        "of archived months, whose entries left the journal).",
        # The entries are summed per transaction before the join, not joined and then
        # grouped: joined to a sum that is unique per transaction, the transactions are merged
        # with it in one pass, where a join to the raw entries made PostgreSQL buffer the
        # entries' side (a Merge Append of the month partitions cannot go back to a mark).
        """
        SELECT t.facility_id, t.id, 0, COALESCE(e.total, 0)
        FROM ledger_transaction t
        LEFT JOIN (SELECT transaction_id, SUM(amount_fen) AS total FROM ledger_entry
                   GROUP BY transaction_id) e ON e.transaction_id = t.id
        WHERE COALESCE(e.total, 0) <> 0
           OR (e.transaction_id IS NULL AND t.created_at >= %(archived_before)s)
        """,
        "transaction",
        Screen(
            # Weighted by transaction, the entries sum to zero only if every transaction's do;
            # the transactions that have entries are all the transactions.
            # Both sides leave out what is dated before the archived months.
            f"""
            SELECT (SELECT COALESCE(SUM(amount_fen * {weight("transaction_id")}), 0)
                    FROM ledger_entry WHERE created_at >= %(archived_before)s),
                   COUNT(*), COALESCE(SUM({weight("transaction_id")}), 0)
            FROM (SELECT DISTINCT transaction_id FROM ledger_entry
                  WHERE created_at >= %(archived_before)s) e
            """,  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
            f"""
            SELECT 0, COUNT(*), COALESCE(SUM({weight("id")}), 0) FROM ledger_transaction
            WHERE created_at >= %(archived_before)s
            """,  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
        ),
    ),
    Check(
        "cached_balance_mismatch",
        "Each inmate account's cached balance equals the sum of its entries (and of its totals "
        "in archived months).",
        """
        SELECT a.facility_id, a.id, COALESCE(s.total, 0), a.balance_fen
        FROM ledger_account a
        LEFT JOIN (SELECT account_id, SUM(amount_fen) AS total
                   FROM (SELECT account_id, amount_fen FROM ledger_entry
                         UNION ALL
                         SELECT account_id, amount_fen FROM ledger_archivedaccounttotal) j
                   GROUP BY account_id) s ON s.account_id = a.id
        WHERE a.balance_fen IS NOT NULL AND a.balance_fen <> COALESCE(s.total, 0)
        """,
        "account",
        Screen(
            f"""
            SELECT COALESCE(SUM(balance_fen * {weight("id")}), 0)
            FROM ledger_account WHERE balance_fen IS NOT NULL
            """,  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
            # System accounts carry no cached balance: their entries are left out by id.
            f"""
            SELECT COALESCE(SUM(amount_fen * {weight("account_id")}), 0)
            FROM (SELECT account_id, amount_fen FROM ledger_entry
                  UNION ALL
                  SELECT account_id, amount_fen FROM ledger_archivedaccounttotal) j
            WHERE NOT (account_id = ANY (ARRAY(
                SELECT id FROM ledger_account WHERE balance_fen IS NULL)))
            """,  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
        ),
    ),
    Check(
        "spendable_out_of_bounds",
        "No spendable balance is negative, and spendable + pending is within the balance cap.",
        """
        SELECT a.facility_id, a.id, a.balance_cap_fen, a.balance_fen + a.pending_fen
        FROM ledger_account a
        WHERE a.kind = 'spendable'
          AND (a.balance_fen < 0 OR a.balance_fen + a.pending_fen > a.balance_cap_fen)
        """,
        "account",
    ),
    Check(
        "pending_mismatch",
        "Each spendable account's pending money equals its deposits awaiting payment or held.",
        """
        SELECT a.facility_id, a.id, COALESCE(d.total, 0), a.pending_fen
        FROM ledger_account a
        LEFT JOIN (SELECT inmate_id, SUM(amount_fen) AS total FROM ledger_deposit
                   WHERE status IN ('created', 'held') GROUP BY inmate_id) d
                  ON d.inmate_id = a.inmate_id
        WHERE a.kind = 'spendable' AND a.pending_fen <> COALESCE(d.total, 0)
        """,
        "account",
    ),
    Check(
        "period_received_mismatch",
        "Each period's received money equals its credited deposits.",
        """
        SELECT p.facility_id, p.id, COALESCE(d.total, 0), p.received_fen
        FROM ledger_monthlyperiod p
        LEFT JOIN (SELECT period_id, SUM(amount_fen) AS total FROM ledger_deposit
                   WHERE status = 'credited' GROUP BY period_id) d ON d.period_id = p.id
        WHERE p.received_fen <> COALESCE(d.total, 0)
        """,
        "period",
        Screen(
            f"SELECT COALESCE(SUM(received_fen * {weight('id')}), 0) FROM ledger_monthlyperiod",  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
            f"""
            SELECT COALESCE(SUM(amount_fen * {weight("period_id")}), 0)
            FROM ledger_deposit WHERE status = 'credited'
            """,  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
        ),
    ),
    Check(
        "period_reserved_mismatch",
        "Each period's reserved money equals its deposits awaiting payment or held.",
        """
        SELECT p.facility_id, p.id, COALESCE(d.total, 0), p.reserved_fen
        FROM ledger_monthlyperiod p
        LEFT JOIN (SELECT period_id, SUM(amount_fen) AS total FROM ledger_deposit
                   WHERE status IN ('created', 'held') GROUP BY period_id) d
                  ON d.period_id = p.id
        WHERE p.reserved_fen <> COALESCE(d.total, 0)
        """,
        "period",
    ),
    Check(
        "period_over_cap",
        "No period's received + reserved money exceeds its monthly cap.",
        """
        SELECT p.facility_id, p.id, p.cap_fen, p.received_fen + p.reserved_fen
        FROM ledger_monthlyperiod p
        WHERE p.received_fen + p.reserved_fen > p.cap_fen
        """,
        "period",
    ),
    Check(
        "credited_deposit_without_transaction",
        "Every credited deposit has its journal transaction, which puts the deposit's amount "
        "on the deposit inmate's spendable account; a deposit not credited puts nothing there "
        "(deposits with a transaction in an archived month are left out: its entries left the "
        "journal).",
        """
        SELECT d.facility_id, d.id,
               CASE WHEN d.status = 'credited' THEN d.amount_fen ELSE 0 END,
               COALESCE(SUM(e.amount_fen) FILTER (
                   WHERE a.inmate_id = d.inmate_id AND a.kind = 'spendable'), 0)
        FROM ledger_deposit d
        LEFT JOIN ledger_transaction t ON t.deposit_id = d.id
        LEFT JOIN ledger_entry e ON e.transaction_id = t.id
        -- a join rather than a correlated IN (SELECT ... WHERE inmate_id = d.inmate_id),
        -- which ran once per entry and was most of a national-scale run
        LEFT JOIN ledger_account a ON a.id = e.account_id
        WHERE d.status = 'credited' OR t.id IS NOT NULL
        GROUP BY d.id, d.facility_id, d.amount_fen, d.status
        HAVING COALESCE(SUM(e.amount_fen) FILTER (
                   WHERE a.inmate_id = d.inmate_id AND a.kind = 'spendable'), 0)
               <> CASE WHEN d.status = 'credited' THEN d.amount_fen ELSE 0 END
           AND COALESCE(MIN(t.created_at) >= %(archived_before)s, TRUE)
        """,
        "deposit",
        Screen(
            # Weighted by (deposit, account): money on any other account than the deposit
            # inmate's spendable one weighs differently. System accounts' legs are left out.
            f"""
            SELECT COALESCE(SUM(d.amount_fen * {pair_weight("d.id", "s.id")}), 0)
            FROM ledger_deposit d
            JOIN ledger_account s ON s.inmate_id = d.inmate_id AND s.kind = 'spendable'
            WHERE d.status = 'credited' AND NOT EXISTS (
                SELECT 1 FROM ledger_transaction o
                WHERE o.deposit_id = d.id AND o.created_at < %(archived_before)s)
            """,  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
            f"""
            SELECT COALESCE(SUM(e.amount_fen * {pair_weight("t.deposit_id", "e.account_id")}), 0)
            FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id
            WHERE t.deposit_id IS NOT NULL AND NOT (e.account_id = ANY (ARRAY(
                SELECT id FROM ledger_account WHERE inmate_id IS NULL)))
              AND NOT EXISTS (
                SELECT 1 FROM ledger_transaction o
                WHERE o.deposit_id = t.deposit_id AND o.created_at < %(archived_before)s)
            """,  # noqa: S608 - weights are constant SQL built from column names; the seed is bound
        ),
    ),
    Check(
        "reservation_outlived_expiry",
        "No deposit reservation outlives its expiry by more than the expiry task's interval.",
        """
        SELECT d.facility_id, d.id, 'expired', d.status
        FROM ledger_deposit d
        WHERE d.status = 'created' AND d.expires_at < %(expired_before)s
        """,
        "deposit",
    ),
]


def register_check(check: Check) -> None:
    """Add an app's check to every run (once: a second registration under the same name is
    ignored). Called from an ``AppConfig.ready``."""
    if all(known.name != check.name for known in CHECKS):
        CHECKS.append(check)


def _plain(value):
    """PostgreSQL sums bigints as numeric; findings carry plain integers."""
    return int(value) if isinstance(value, Decimal) else value


def run_checks(
    *, now: dt.datetime | None = None, checks: Sequence[Check] | None = None, exact: bool = False
) -> list[Finding]:
    """Run every check (or ``checks``); return all findings (an empty list for a clean ledger).

    On PostgreSQL a check with a screen runs its exact query only when the screen's two
    sides disagree; ``exact=True`` runs every exact query. Other databases have no
    ``hashint8extended`` and always run the exact queries. With a fit read replica the checks
    run there first and are confirmed on the primary (see the module's docstring)."""
    now = now or timezone.now()
    checks = list(CHECKS if checks is None else checks)
    params = {
        "now": now,
        # A reservation that expired since the expiry task last ran is its next run's work,
        # not a finding: it is late only once a whole interval (and a run) has gone by.
        "expired_before": now - expiry_interval() - EXPIRY_RUN_SLACK,
        "seed": secrets.randbits(62),
        # Read on the primary: a replica behind it may not have the newest archived month yet,
        # and then reads its entries from the journal, which it still has too.
        "archived_before": archive.archived_before(),
    }
    alias = replica.alias_for_reads_that_can_wait()
    if alias != DEFAULT_DB_ALIAS:
        try:
            seen_on_replica = _run_on(alias, checks, params, exact=exact)
        except DatabaseError:
            logger.warning("Reconciliation could not read the replica: it reads the primary")
            with contextlib.suppress(DatabaseError):
                connections[alias].close()
        else:
            found_something = {finding.check for finding in seen_on_replica}
            checks = [check for check in checks if check.name in found_something]
    return _run_on(DEFAULT_DB_ALIAS, checks, params, exact=exact) if checks else []


def _run_on(alias: str, checks: Sequence[Check], params, *, exact: bool) -> list[Finding]:
    """The checks' findings as the database behind ``alias`` sees them, in one snapshot."""
    screened = not exact and connections[alias].vendor == "postgresql"
    findings = []
    with _one_snapshot(alias), sql.cursor(alias) as cursor:
        for check in checks:
            sides = None
            if screened and check.screen:
                sides = _screen_sides(cursor, check.screen, params, alias)
                if sides is not None and sides[0] == sides[1]:
                    continue
            cursor.execute(check.sql, params)
            found = [
                Finding(
                    check.name,
                    facility_id,
                    f"{check.subject} {subject}",
                    _plain(expected),
                    _plain(actual),
                )
                for facility_id, subject, expected, actual in cursor.fetchall()
            ]
            if not found and sides is not None:
                # The screen saw a difference the exact query cannot name (an entry of a
                # transaction that does not exist, say): report the disagreement itself.
                found = [Finding(check.name, None, "whole ledger", *map(_row, sides))]
            findings += found
    return findings


def _screen_sides(cursor, screen: Screen, params, alias: str) -> tuple | None:
    """Both sides of a screen, or None if a weighted sum overflowed (then the exact query
    decides)."""
    try:
        with transaction.atomic(using=alias):
            cursor.execute(screen.one_side, params)
            one_side = cursor.fetchone()
            cursor.execute(screen.other_side, params)
            return one_side, cursor.fetchone()
    except DataError:
        return None


def _row(values: tuple) -> str:
    return ", ".join(str(_plain(value)) for value in values)


@contextlib.contextmanager
def _one_snapshot(alias: str = DEFAULT_DB_ALIAS):
    """One read-only snapshot for the whole run, where this call owns the transaction (inside
    a caller's atomic block a savepoint cannot change the isolation level)."""
    connection = connections[alias]
    owns_transaction = not connection.in_atomic_block
    with transaction.atomic(using=alias):
        if owns_transaction and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield
