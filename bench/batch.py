"""Monthly rollover and reconciliation at national scale, each beside its raw SQL.

    DATABASE_URL=postgres://user@host:5432/commissary \\
        python bench/batch.py --inmates 1000000 --entries 10000000

The benchmark works in a database of its own: the name in DATABASE_URL with ``_batchbench``
appended (a name that already ends so is used as it is). It drops and re-creates that database,
migrates it, and builds its data set-based inside PostgreSQL: one facility through
``create_facility``, the inmates with their spendable and held accounts laid out as
``open_inmate_accounts`` opens them, last month's periods, and a journal of two-entry
transactions, about half of them credited deposits (clearing -> spendable) and the rest staff
adjustments (adjustments -> spendable), with every cached balance, period and deposit agreeing
with it. ``--reuse`` keeps a database already built at the same size.

The rows are loaded with ``session_replication_role = replica``, which skips the journal's
deferred per-row checks (balances, has entries) and the foreign-key triggers: the ids are
computed, not looked up, and the run refuses to report unless reconciliation of the loaded
ledger comes back clean. ``--checked-load`` keeps every trigger on instead, in small
database transactions; it is about ten times slower.

Then it measures, in the same run and against the same tables:

* rollover: ``ledger.batch.roll_over_facility`` at 00:05 local on the 1st of the next month
  (closing last month's periods, opening one for every active inmate) against the same two
  statements sent bare (the UPDATE that closes, the INSERT ... SELECT ... ON CONFLICT DO
  NOTHING that opens). Before each side the periods table is put back as it was and
  rewritten (VACUUM FULL), so both sides insert the same rows into the same indexes. The
  services run twice: in one worker process, and shared by two worker processes that claim
  the same run's chunks (``ledger.chunks``, chunks of ``--chunk-size`` inmates; one plans,
  both work, timed from the plan until both return), so "two workers vs one" is printed
  beside the same raw statements.
* reconciliation: ``ledger.batch.reconcile_ledger`` (every check in
  ``ledger.reconciliation.CHECKS``, screened as the nightly run is) against a yardstick that
  is NOT the same work: one bare GROUP BY that sums the journal per account, the single
  heaviest statement an exact check needs, where the run does nine checks. Then one run
  with every exact query (``exact=True``), whose ratio to the same GROUP BY is printed too,
  and each check on its own, both ways, so the cost of each shows.
* the peak resident memory of the worker process that ran the services.

Targets: the rollover and the screened reconciliation at most twice their baselines, the
worker under 300 MB (the exact mode is an audit run, with no target). The last four lines of
the output are the rollover ratio, the two reconciliation ratios and the peak memory.
``--only rollover`` or ``--only reconciliation`` measures one of the two.

``--only detach`` measures the detach of the journal's oldest month (``manage.py
detach_journal_month``, ``ledger.archive.detach_oldest_month``) on a journal that spans
``--months`` months (2 by default with it: the month before last, which may be detached, and
last month): a clean reconciliation run first (the detach needs one), then, alternating which
goes first, the services in the worker and the same statements sent bare after the plan (the
month's figures, the GROUP BYs into the two temporary tables, the locks, the inserts, the
DETACH, the commit), each phase's wall time, client CPU and backend CPU (read from /proc: the
server must run on this machine) and the locked part (from the lock attempt that got the locks
to the commit). The run stops unless the raw side sends the same statements as the services.
Each detach is undone before the next (the archived rows deleted, the month's partition made
again and its rows copied back, the tables rewritten). It reports the account and day totals
kept beside the month's entries, their tables' and indexes' bytes beside the partition's, and,
once more each way with one client posting purchases in a loop, the postings' latency before
the detach, during it and during its locked part (count, median, p99, max).

``--compare-unpartitioned`` measures, in place of the above, the same data in both layouts of
the journal: partitioned by month, as migrated (``ledger 0011``), and one plain table. After
loading it builds ``ledger_entry_unpartitioned`` beside the journal with the same rows, and
its columns, constraints, indexes and triggers read from the catalog (the primary key stays
(id, created_at), as partitioning made it); the run stops, naming the difference, unless the
two differ in partitioning only. Each round then renames each layout in as ``ledger_entry``
in turn, alternating which goes first, and times the rollover (one worker) and the screened
reconciliation each beside its raw baseline; the output ends with the table layout x
(services, raw, ratio). The journal is partitioned again at the end and the copy dropped.
"""

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
import re
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

# Run as a script, Python puts this file's folder first on the path, where bench/ledger.py
# would shadow the ledger app: the project root goes there instead (see bench/common.py).
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]
from bench.common import open_raw, raw_connection_params, recreate_database, setup_django  # noqa: E402

DATABASE_SUFFIX = "_batchbench"
FACILITY_CODE = "batchbench"
JOURNAL_CHUNK = 250_000  # transactions loaded per database transaction
# With the triggers on, each entry's deferred check costs more the more rows its database
# transaction holds (about 75 us with 1,000 entries, 430 us with 16,000): load in small bites.
CHECKED_JOURNAL_CHUNK = 1_000
ROLLOVER_LOCAL_TIME = dt.time(0, 5)  # when the scheduler fires, in the facility's timezone
TARGET_RATIO = 2.0
TARGET_WORKER_MB = 300

# The journal, as functions of the transaction's number g (1..transactions): which inmate
# (round robin, so every inmate has about the same history), whether it is a deposit (every
# second inmate in each round, the others the next round: each inmate alternates deposits
# and adjustments), and how much it moves (1.00 to 9.99 yuan).
INMATE_OF = "mod(g - 1, %(inmates)s) + 1"
IS_DEPOSIT = "mod((g - 1) / %(inmates)s + mod(g - 1, %(inmates)s), 2) = 0"
AMOUNT_OF = "(100 + mod(g::bigint * 7919, 900))"


def bench_database_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit("DATABASE_URL must be a PostgreSQL URL (postgres://user@host/name).")
    name = parts.path.lstrip("/") or "commissary"
    if not name.endswith(DATABASE_SUFFIX):
        name += DATABASE_SUFFIX
    return urlunsplit(parts._replace(path=f"/{name}"))


class Progress:
    """One line per build step, with the seconds it took and the seconds since the start."""

    def __init__(self):
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def step(self, label: str):
        """Times the block; a count the block puts in the yielded dict prefixes the label."""
        began = time.perf_counter()
        counted = {}
        yield counted
        now = time.perf_counter()
        if "rows" in counted:
            label = f"{counted['rows']:,} {label}"
        print(f"  {label}: {now - began:.1f} s (at {now - self.started:.1f} s)", flush=True)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --- the data -----------------------------------------------------------------------------


def previous_month(month: dt.date) -> dt.date:
    return (month - dt.timedelta(days=1)).replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def existing_data(
    params: dict, inmates: int, transactions: int, months: int = 1
) -> tuple[int, dt.date] | None:
    """The facility and data month of a database already built at this size and over this
    many months, if there is one."""
    import psycopg

    try:
        raw = open_raw(params)
    except psycopg.OperationalError:
        return None
    with raw:
        try:
            row = raw.execute(
                "SELECT f.id,"
                " (SELECT COUNT(*) FROM facilities_inmate i WHERE i.facility_id = f.id),"
                # The loaded kinds: a detach run's posting client adds purchases.
                " (SELECT COUNT(*) FROM ledger_transaction t WHERE t.facility_id = f.id"
                " AND t.kind IN ('deposit', 'adjustment')),"
                " (SELECT MIN(p.month) FROM ledger_monthlyperiod p WHERE p.facility_id = f.id),"
                " (SELECT MIN(t.created_at AT TIME ZONE f.timezone)::date FROM ledger_transaction t"
                " WHERE t.facility_id = f.id)"
                " FROM facilities_facility f WHERE f.code = %s",
                [FACILITY_CODE],
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    if row is None or row[1:3] != (inmates, transactions) or row[3] is None:
        return None
    if row[4].replace(day=1) != add_months(row[3], 1 - months):
        return None
    return row[0], row[3]


def build_data(
    params: dict, *, inmates: int, transactions: int, checked: bool, months: int = 1
) -> tuple:
    """Create the database, then load it (``load_data``).
    Returns (facility id, the month the data lives in)."""
    from django.core.management import call_command

    progress = Progress()
    print(f"building {inmates:,} inmates and {2 * transactions:,} entries", flush=True)
    with progress.step(f"database {params['dbname']} created and migrated"):
        recreate_database(params)
        call_command("migrate", verbosity=0)
    return load_data(
        params,
        inmates=inmates,
        transactions=transactions,
        checked=checked,
        progress=progress,
        months=months,
    )


def make_partitions(start: dt.datetime, end: dt.datetime) -> None:
    """Attach the journal's partitions for the partition months from ``start`` to ``end``
    (exclusive) that are missing."""
    from ledger import partitions

    if not partitions.is_partitioned():
        return
    month, last = (
        partitions.month_of(start),
        partitions.month_of(end - dt.timedelta(microseconds=1)),
    )
    attached = set(partitions.attached_months())
    while month <= last:
        if month not in attached:
            partitions.create_partition(month)
        month = partitions.add_months(month, 1)


def load_data(
    params: dict, *, inmates: int, transactions: int, checked: bool, progress=None, months: int = 1
) -> tuple:
    """Create the facility, inmates, accounts, last month's periods, deposits and journal in
    the migrated database of ``params``; the journal spans the ``months`` months that end with
    last month, evenly. Returns (facility id, last month: the month of the periods)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from tqdm import tqdm

    from facilities.models import DEFAULT_BALANCE_CAP_FEN, DEFAULT_MONTHLY_CAP_FEN
    from facilities.services import create_facility

    progress = progress or Progress()
    # Caps far enough above what the round robin gives one inmate that none is ever reached.
    most_fen = -(-transactions // inmates) * 999
    with progress.step("facility and staff member"):
        facility = create_facility(
            code=FACILITY_CODE,
            name="Batch benchmark facility",
            monthly_cap_fen=max(DEFAULT_MONTHLY_CAP_FEN, 2 * most_fen),
            balance_cap_fen=max(DEFAULT_BALANCE_CAP_FEN, 2 * most_fen),
        )
        staff = get_user_model().objects.create_user(username="batchbench-staff", is_staff=True)
    connection.close()

    zone = ZoneInfo(facility.timezone)
    month = previous_month(dt.datetime.now(zone).date().replace(day=1))
    # The journal's first instant: the start of its first month (last month when it is one).
    month_start = dt.datetime.combine(add_months(month, 1 - months), dt.time(), zone)
    month_end = dt.datetime.combine(next_month(month), dt.time(), zone)
    # The journal's entries go into their month's partition, as in production, where the
    # daily task creates it ahead; not into the DEFAULT partition the migration leaves.
    with progress.step("partitions of the data's months"):
        make_partitions(month_start, month_end)

    raw = open_raw(params)
    raw.execute("SET work_mem = '256MB'")  # the per-inmate totals hash a million groups
    if not checked:
        raw.execute("SET session_replication_role = replica")

    def base(table: str) -> int:
        return raw.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]  # noqa: S608 - table names from this module's own list

    def system_account(kind: str) -> int:
        return raw.execute(
            "SELECT id FROM ledger_account WHERE facility_id = %s AND inmate_id IS NULL "
            "AND kind = %s ORDER BY provider LIMIT 1",
            [facility.pk, kind],
        ).fetchone()[0]

    values = {
        "facility": facility.pk,
        "currency": facility.currency,
        "monthly_cap": facility.monthly_cap_fen,
        "balance_cap": facility.balance_cap_fen,
        "inmates": inmates,
        "transactions": transactions,
        "month": month,
        "month_start": month_start,
        "seconds_per_transaction": (month_end - month_start).total_seconds() / transactions,
        "staff": staff.pk,
        "clearing": system_account("clearing"),
        "adjustments": system_account("adjustments"),
        "inmate_base": base("facilities_inmate"),
        "account_base": base("ledger_account"),
        "period_base": base("ledger_monthlyperiod"),
        "deposit_base": base("ledger_deposit"),
        "transaction_base": base("ledger_transaction"),
    }
    created_at = "%(month_start)s + (g - 0.5) * %(seconds_per_transaction)s * interval '1 second'"
    per_inmate_totals = f"""
        SELECT {INMATE_OF} AS k, SUM({AMOUNT_OF}) AS total_fen,
               SUM({AMOUNT_OF}) FILTER (WHERE {IS_DEPOSIT}) AS deposited_fen
        FROM generate_series(1, %(transactions)s::bigint) g GROUP BY 1
    """  # noqa: S608 - fragments are this module's constants; values are bound

    with progress.step(f"{inmates:,} inmates"):
        raw.execute(
            """
            INSERT INTO facilities_inmate (id, facility_id, housing_unit_id, inmate_number,
                surname, given_name, status, pin_hash, card_token, admitted_at, released_at)
            SELECT %(inmate_base)s + k, %(facility)s, NULL, 'B' || lpad(k::text, 9, '0'),
                'Bench', '', 'active', '', NULL, %(month_start)s - interval '1 year', NULL
            FROM generate_series(1, %(inmates)s::bigint) k
            """,
            values,
        )
    # Spendable then held for each inmate in turn, as intake opens them; the cached balance
    # is the sum of what the journal below will post to the spendable account.
    with progress.step(f"{2 * inmates:,} inmate accounts"):
        raw.execute(
            f"""
            INSERT INTO ledger_account (id, kind, facility_id, inmate_id, provider, currency,
                balance_fen, pending_fen, balance_cap_fen, is_frozen, is_closed, created_at)
            SELECT %(account_base)s + 2 * s.k - 1 + h.leg,
                CASE h.leg WHEN 0 THEN 'spendable' ELSE 'held' END,
                %(facility)s, %(inmate_base)s + s.k, '', %(currency)s,
                CASE h.leg WHEN 0 THEN COALESCE(t.total_fen, 0) ELSE 0 END, 0,
                CASE h.leg WHEN 0 THEN %(balance_cap)s END, false, false,
                %(month_start)s - interval '1 year'
            FROM generate_series(1, %(inmates)s::bigint) s(k)
            CROSS JOIN (VALUES (0), (1)) h(leg)
            LEFT JOIN ({per_inmate_totals}) t ON t.k = s.k
            ORDER BY 1
            """,  # noqa: S608 - fragments are this module's constants; values are bound
            values,
        )
    with progress.step(f"{inmates:,} periods of {month:%Y-%m}"):
        raw.execute(
            f"""
            INSERT INTO ledger_monthlyperiod (id, inmate_id, facility_id, month, received_fen,
                reserved_fen, cap_fen, closed_at)
            SELECT %(period_base)s + s.k, %(inmate_base)s + s.k, %(facility)s, %(month)s,
                COALESCE(t.deposited_fen, 0), 0, %(monthly_cap)s, NULL
            FROM generate_series(1, %(inmates)s::bigint) s(k)
            LEFT JOIN ({per_inmate_totals}) t ON t.k = s.k
            ORDER BY 1
            """,  # noqa: S608 - fragments are this module's constants; values are bound
            values,
        )
    with progress.step("credited deposits") as counted:
        counted["rows"] = raw.execute(
            f"""
            INSERT INTO ledger_deposit (id, reference, inmate_id, facility_id, period_id,
                depositor_id, amount_fen, fee_fen, currency, provider, provider_reference,
                status, idempotency_scope, idempotency_key, request_hash, created_at, expires_at,
                resolved_at)
            SELECT %(deposit_base)s + g, gen_random_uuid(), %(inmate_base)s + k,
                %(facility)s, %(period_base)s + k, NULL, {AMOUNT_OF}, 0, %(currency)s,
                'sandbox', '', 'credited', 'depositor:1', 'bench-deposit-' || g, 'batchbench',
                at - interval '2 minutes', at + interval '28 minutes', at
            FROM generate_series(1, %(transactions)s::bigint) g,
                LATERAL (SELECT {INMATE_OF} AS k, {created_at} AS at) x
            WHERE {IS_DEPOSIT}
            """,  # noqa: S608 - fragments are this module's constants; values are bound
            values,
        ).rowcount

    # The journal in chunks, each transaction followed by its two entries (the system
    # account's leg first, as the services post them).
    started = time.perf_counter()
    chunk_size = CHECKED_JOURNAL_CHUNK if checked else JOURNAL_CHUNK
    chunks = range(1, transactions + 1, chunk_size)
    for low in tqdm(chunks, desc="  journal", unit="chunk", leave=False):
        high = min(low + chunk_size - 1, transactions)
        chunk = {**values, "low": low, "high": high}
        with raw.transaction():
            raw.execute(
                f"""
                INSERT INTO ledger_transaction (id, kind, idempotency_scope, idempotency_key,
                    request_hash, facility_id, inmate_id, deposit_id, refund_of_id, reverses_id,
                    memo, created_by_id, approved_by_id, created_at)
                SELECT %(transaction_base)s + g,
                    CASE WHEN {IS_DEPOSIT} THEN 'deposit' ELSE 'adjustment' END,
                    CASE WHEN {IS_DEPOSIT} THEN 'system' ELSE 'staff:' || %(staff)s END,
                    CASE WHEN {IS_DEPOSIT} THEN 'deposit-credit:' || (%(deposit_base)s + g)
                         ELSE 'bench-adjustment-' || g END,
                    'batchbench', %(facility)s, %(inmate_base)s + {INMATE_OF},
                    CASE WHEN {IS_DEPOSIT} THEN %(deposit_base)s + g END, NULL, NULL,
                    CASE WHEN {IS_DEPOSIT} THEN '' ELSE 'Benchmark correction' END,
                    CASE WHEN {IS_DEPOSIT} THEN NULL ELSE %(staff)s END, NULL, {created_at}
                FROM generate_series(%(low)s::bigint, %(high)s::bigint) g
                """,  # noqa: S608 - fragments are this module's constants; values are bound
                chunk,
            )
            raw.execute(
                f"""
                INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at)
                SELECT %(transaction_base)s + g,
                    CASE WHEN is_system_leg AND {IS_DEPOSIT} THEN %(clearing)s
                         WHEN is_system_leg THEN %(adjustments)s
                         ELSE %(account_base)s + 2 * ({INMATE_OF}) - 1 END,
                    CASE WHEN is_system_leg THEN -{AMOUNT_OF} ELSE {AMOUNT_OF} END,
                    {created_at}
                FROM (SELECT (e + 1) / 2 AS g, mod(e, 2) = 1 AS is_system_leg
                      FROM generate_series(2 * %(low)s::bigint - 1, 2 * %(high)s::bigint) e) legs
                """,  # noqa: S608 - fragments are this module's constants; values are bound
                chunk,
            )
    print(
        f"  {transactions:,} transactions, {2 * transactions:,} entries"
        f"{' (every trigger on)' if checked else ''}: {time.perf_counter() - started:.1f} s "
        f"(at {progress.elapsed:.1f} s)",
        flush=True,
    )
    raw.execute("RESET session_replication_role")

    # Rows loaded with computed ids; the entries take theirs from their own sequence.
    with_computed_ids = (
        "facilities_inmate",
        "ledger_account",
        "ledger_monthlyperiod",
        "ledger_deposit",
        "ledger_transaction",
    )
    with progress.step("id sequences moved past the loaded rows"):
        for table in with_computed_ids:
            raw.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}"  # noqa: S608 - table names from this module's own list
            )
    with progress.step("VACUUM (FREEZE, ANALYZE)"):
        for table in (*with_computed_ids, "ledger_entry"):
            raw.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
    raw.close()
    print(f"data built in {progress.elapsed:.1f} s", flush=True)
    return facility.pk, month


# --- the raw side -------------------------------------------------------------------------

CLOSE_PERIODS = (
    "UPDATE ledger_monthlyperiod SET closed_at = %(now)s "
    "WHERE facility_id = %(facility)s AND month < %(month)s AND closed_at IS NULL"
)
OPEN_PERIODS = (
    "INSERT INTO ledger_monthlyperiod "
    "(inmate_id, facility_id, month, received_fen, reserved_fen, cap_fen) "
    "SELECT i.id, i.facility_id, %(month)s, 0, 0, %(cap)s FROM facilities_inmate i "
    "WHERE i.facility_id = %(facility)s AND i.status = 'active' "
    "ON CONFLICT (inmate_id, month) DO NOTHING"
)
SUM_PER_ACCOUNT = "SELECT account_id, SUM(amount_fen) FROM ledger_entry GROUP BY account_id"
# The reconciliation's yardstick, named for what it is: one statement, not the checks' work.
GROUP_BY = "one GROUP BY of the journal by account"


def reset_periods(raw, *, facility_id: int, data_month: dt.date) -> None:
    """Put the periods back as built (last month's open, none for this month) and rewrite the
    table and its indexes, so each rollover starts from the same pages."""
    raw.execute(
        "DELETE FROM ledger_monthlyperiod WHERE facility_id = %s AND month > %s",
        [facility_id, data_month],
    )
    raw.execute(
        "UPDATE ledger_monthlyperiod SET closed_at = NULL "
        "WHERE facility_id = %s AND closed_at IS NOT NULL",
        [facility_id],
    )
    raw.execute("VACUUM FULL ledger_monthlyperiod")
    raw.execute("ANALYZE ledger_monthlyperiod")
    raw.execute("CHECKPOINT")


def raw_rollover(raw, *, facility_id: int, month: dt.date, now: dt.datetime) -> tuple:
    """The rollover's two statements, bare: (seconds to close, seconds to open, opened)."""
    cap = raw.execute(
        "SELECT monthly_cap_fen FROM facilities_facility WHERE id = %s", [facility_id]
    ).fetchone()[0]
    values = {"facility": facility_id, "month": month, "now": now, "cap": cap}
    began = time.perf_counter()
    with raw.transaction():
        raw.execute(CLOSE_PERIODS, values)
    closed_at = time.perf_counter()
    with raw.transaction():
        opened = raw.execute(OPEN_PERIODS, values).rowcount
    return closed_at - began, time.perf_counter() - closed_at, opened


def raw_sum_per_account(raw) -> float:
    began = time.perf_counter()
    raw.execute(SUM_PER_ACCOUNT).fetchall()
    return time.perf_counter() - began


# --- the journal in both layouts (--compare-unpartitioned) ---------------------------------

LAYOUTS = ("partitioned", "unpartitioned")
JOURNAL = "ledger_entry"
# Where each layout waits while the other one is the journal.
PARKED = {"partitioned": "ledger_entry_partitioned", "unpartitioned": "ledger_entry_unpartitioned"}
COPY_INDEX_SUFFIX = "_np"  # the copy's own index names (index names are unique per schema)
INDEX_BACKED = ("p", "u", "x")  # constraints that come with an index of their own name
# "CREATE [UNIQUE] INDEX name ON [ONLY] table USING ...", as pg_get_indexdef writes it.
INDEX_HEAD = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (ONLY )?(\S+) ")
# The table in "CREATE [CONSTRAINT] TRIGGER name <when and events> ON table ...".
TRIGGER_TABLE = re.compile(r" ON (\S+) ")


class LayoutDrift(Exception):
    """The unpartitioned copy of the journal differs from it in more than partitioning."""


def relation_exists(raw, name: str) -> bool:
    return raw.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()[0]


def current_layout(raw) -> str:
    """The layout of the table now named ``ledger_entry``."""
    partitioned = raw.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))",
        [JOURNAL],
    ).fetchone()[0]
    return "partitioned" if partitioned else "unpartitioned"


def table_of(raw, layout: str) -> str:
    """The name the layout's table has now."""
    return JOURNAL if current_layout(raw) == layout else PARKED[layout]


def use_layout(raw, layout: str) -> None:
    """Make the layout's table the journal: both renamed in one transaction. The journal's
    trigger functions (and the transactions' has-entries trigger) name ``ledger_entry`` and
    so read whichever table has the name; connections' cached plans are made again."""
    now = current_layout(raw)
    if now == layout:
        return
    with raw.transaction():
        raw.execute(f"ALTER TABLE {JOURNAL} RENAME TO {PARKED[now]}")
        raw.execute(f"ALTER TABLE {PARKED[layout]} RENAME TO {JOURNAL}")


def restore_partitioned(raw) -> None:
    """The journal partitioned again, as migrated, and the copy gone (also after a run that
    was stopped half-way)."""
    if current_layout(raw) != "partitioned":
        if not relation_exists(raw, PARKED["partitioned"]):
            raise SystemExit(f"{JOURNAL} is not partitioned and no partitioned journal is parked")
        use_layout(raw, "partitioned")
    raw.execute(f"DROP TABLE IF EXISTS {PARKED['unpartitioned']}")


def _rewrite_index(definition: str, name: str, table: str) -> str:
    match = INDEX_HEAD.match(definition)
    if not match:
        raise LayoutDrift(f"an index definition not understood: {definition}")
    return f"CREATE {match[1] or ''}INDEX {name} ON {table} " + definition[match.end() :]


def _rewrite_trigger(definition: str, table: str) -> str:
    rewritten, count = TRIGGER_TABLE.subn(f" ON {table} ", definition, count=1)
    if not count:
        raise LayoutDrift(f"a trigger definition not understood: {definition}")
    return rewritten


def build_unpartitioned_copy(raw) -> None:
    """A plain table beside the partitioned journal with its rows, and its columns, indexes,
    constraints and triggers as the catalog gives them (nothing here names one of them).

    Columns (types, NOT NULL, defaults, identity, storage) come with ``LIKE``; CHECKs and
    foreign keys are added to the empty table, the rows copied with the foreign-key triggers
    off (``session_replication_role = replica``: they are the journal's own rows, under the
    same keys), then the primary key, the indexes and the journal's triggers are made."""
    from psycopg import sql

    copy = PARKED["unpartitioned"]
    if current_layout(raw) != "partitioned":
        raise SystemExit(f"{JOURNAL} is not partitioned: nothing to compare it with")
    raw.execute(f"DROP TABLE IF EXISTS {copy}")
    raw.execute(
        f"CREATE TABLE {copy} (LIKE {JOURNAL} INCLUDING ALL EXCLUDING INDEXES "
        "EXCLUDING CONSTRAINTS)"
    )
    (options,) = raw.execute(
        "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", [JOURNAL]
    ).fetchone()
    if options:
        raw.execute(f"ALTER TABLE {copy} SET ({', '.join(options)})")
    constraints = raw.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('c', 'f', 'p', 'u', 'x') "
        "ORDER BY conname",
        [JOURNAL],
    ).fetchall()
    for name, kind, definition in constraints:
        if kind not in INDEX_BACKED:
            raw.execute(f'ALTER TABLE {copy} ADD CONSTRAINT "{name}" {definition}')
    with raw.transaction():
        raw.execute("SET LOCAL session_replication_role = replica")
        raw.execute(f"INSERT INTO {copy} SELECT * FROM {JOURNAL}")  # noqa: S608 - this module's names
    # The identity sequence where the journal's is, should anything insert into the copy.
    (sequence,) = raw.execute("SELECT pg_get_serial_sequence(%s, 'id')", [JOURNAL]).fetchone()
    if sequence:
        raw.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), last_value, is_called) "  # noqa: S608 - a name from the catalog
            f"FROM {sequence}",
            [copy],
        )
    for name, kind, definition in constraints:
        if kind in INDEX_BACKED:
            raw.execute(
                f'ALTER TABLE {copy} ADD CONSTRAINT "{name[:60]}{COPY_INDEX_SUFFIX}" {definition}'
            )
    indexes = raw.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
        "AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')) ORDER BY c.relname",
        [JOURNAL],
    ).fetchall()
    for name, definition in indexes:
        raw.execute(_rewrite_index(definition, f'"{name[:60]}{COPY_INDEX_SUFFIX}"', copy))
    triggers = raw.execute(
        "SELECT tgname, pg_get_triggerdef(oid), tgenabled, obj_description(oid, 'pg_trigger') "
        "FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname",
        [JOURNAL],
    ).fetchall()
    switch = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}
    for name, definition, enabled, comment in triggers:
        raw.execute(_rewrite_trigger(definition, copy))
        if enabled in switch:
            raw.execute(f'ALTER TABLE {copy} {switch[enabled]} TRIGGER "{name}"')
        if comment is not None:
            raw.execute(
                sql.SQL("COMMENT ON TRIGGER {} ON {} IS {}").format(
                    sql.Identifier(name), sql.Identifier(copy), sql.Literal(comment)
                )
            )
    raw.execute(f"VACUUM (FREEZE, ANALYZE) {copy}")
    raw.execute("CHECKPOINT")


def layout_signature(raw, table: str) -> dict[str, list]:
    """What a layout is, but its partitioning and its objects' own names: the table's
    options, its columns, indexes, constraints and triggers, each as the catalog defines it,
    and its rows' count and sums."""
    signature = {}
    signature["table"] = raw.execute(
        "SELECT relpersistence, relreplident, reloptions FROM pg_class WHERE oid = %s::regclass",
        [table],
    ).fetchall()
    signature["columns"] = raw.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,"
        " a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attstorage, a.attcompression,"
        " (SELECT collname FROM pg_collation WHERE oid = a.attcollation)"
        " FROM pg_attribute a LEFT JOIN pg_attrdef d"
        " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        [table],
    ).fetchall()
    signature["indexes"] = sorted(
        (INDEX_HEAD.sub(r"CREATE \1INDEX ON ", definition), *rest)
        for definition, *rest in raw.execute(
            "SELECT pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,"
            " i.indimmediate, i.indisvalid, i.indnullsnotdistinct FROM pg_index i"
            " WHERE i.indrelid = %s::regclass",
            [table],
        ).fetchall()
    )
    # Index-backed constraints (the primary key) carry their index's name: not compared.
    signature["constraints"] = sorted(
        raw.execute(
            "SELECT contype, CASE WHEN contype IN ('p', 'u', 'x') THEN '' ELSE conname END,"
            " pg_get_constraintdef(oid), condeferrable, condeferred, convalidated"
            " FROM pg_constraint WHERE conrelid = %s::regclass"
            " AND contype IN ('c', 'f', 'p', 'u', 'x')",
            [table],
        ).fetchall()
    )
    signature["triggers"] = sorted(
        (name, TRIGGER_TABLE.sub(" ON ? ", definition, count=1), *rest)
        for name, definition, *rest in raw.execute(
            "SELECT tgname, pg_get_triggerdef(oid), tgenabled, obj_description(oid, 'pg_trigger')"
            " FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            [table],
        ).fetchall()
    )
    signature["rows"] = raw.execute(
        f"SELECT COUNT(*), SUM(id), SUM(amount_fen) FROM {table}"  # noqa: S608 - this module's names
    ).fetchall()
    return signature


def check_layouts(raw) -> None:
    """Raise LayoutDrift, naming each difference, unless the two layouts' tables differ in
    their partitioning only."""
    tables = {layout: table_of(raw, layout) for layout in LAYOUTS}
    for layout, table in tables.items():
        if not relation_exists(raw, table):
            raise LayoutDrift(f"no {layout} journal ({table})")
    signatures = {layout: layout_signature(raw, table) for layout, table in tables.items()}
    differences = []
    for part, partitioned in signatures["partitioned"].items():
        unpartitioned = signatures["unpartitioned"][part]
        if partitioned == unpartitioned:
            continue
        only = {
            layout: [row for row in signatures[layout][part] if row not in signatures[other][part]]
            for layout, other in (LAYOUTS, LAYOUTS[::-1])
        }
        differences.append(
            f"  {part}:"
            + "".join(f"\n    only {layout}: {row}" for layout in LAYOUTS for row in only[layout])
            + ("" if any(only.values()) else "\n    the same, in another order or number")
        )
    if differences:
        raise LayoutDrift(
            "the unpartitioned journal differs from the partitioned one in more than "
            "partitioning:\n" + "\n".join(differences)
        )


# --- the detach of the oldest month (--only detach) -----------------------------------------

# The statements ``ledger.archive.detach_oldest_month`` sends once it has its plan, bare: the
# raw side sends these, and the run stops (``BaselineDrift``) unless the services sent the
# same, in the same order. Copies, not imports: a change to the services shows as a drift.
DETACH_MONTH_FIGURES = (
    "SELECT COUNT(*), COUNT(DISTINCT account_id), COALESCE(SUM(amount_fen), 0), "
    "COALESCE(MAX(id), 0) FROM {table}"
)
DETACH_ACCOUNT_TOTALS = (
    "CREATE TEMPORARY TABLE archived_month_totals ON COMMIT DROP AS "
    "SELECT account_id, SUM(amount_fen) AS amount_fen FROM {table} GROUP BY account_id"
)
DETACH_DAY_TOTALS = """
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
DETACH_LOCKS = (
    "LOCK TABLE ledger_account IN EXCLUSIVE MODE NOWAIT",
    "LOCK TABLE ledger_transaction IN EXCLUSIVE MODE NOWAIT",
    "LOCK TABLE ledger_entry IN ACCESS EXCLUSIVE MODE NOWAIT",
    "SET CONSTRAINTS ALL IMMEDIATE",
)
DETACH_CHECKS_NOW = "SET CONSTRAINTS ALL IMMEDIATE"  # before the totals: their checks then
DETACH_NEWEST_ID = "SELECT COALESCE(MAX(id), 0) FROM {table}"
DETACH_ARCHIVED_MONTH = (
    'INSERT INTO "ledger_archivedjournalmonth" ("month", "starts_at", "ends_at", "table_name", '
    '"entry_count", "reconciliation_run_id", "detached_at", "detached_by", "has_day_totals") '
    'VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING "ledger_archivedjournalmonth"."id"'
)
DETACH_STORE_ACCOUNT_TOTALS = (
    "INSERT INTO ledger_archivedaccounttotal (archived_month_id, account_id, amount_fen) "
    "SELECT %s, account_id, amount_fen FROM archived_month_totals"
)
DETACH_STORE_DAY_TOTALS = (
    "INSERT INTO ledger_archiveddaytotal "
    "(archived_month_id, account_id, day, starts_at, ends_at, amount_fen) "
    "SELECT %s, account_id, day, starts_at, ends_at, amount_fen FROM archived_day_totals"
)
DETACH_PARTITION = "ALTER TABLE ledger_entry DETACH PARTITION {table}"
DETACH_DEFAULT_LEFT = "SELECT COUNT(*) FROM ledger_entry_default WHERE created_at < %s"
DETACH_KINDS = ["spendable", "held", "sales", "fees"]
LOCK_PAUSE_SECONDS = 0.05  # between two attempts at the locks, as the services pause

# The detach's phases, in order, each begun by the first statement that starts so once the one
# before it has begun (the lock's retried attempts stay in the lock's phase); the plan is what
# comes before the month's figures, and the commit what follows the last statement.
PLAN_PHASE = "plan (checks before it)"
DETACH_PHASES = (
    ("sum the month (count, sum, newest id)", "SELECT COUNT(*), COUNT(DISTINCT account_id)"),
    ("account totals: GROUP BY account", "CREATE TEMPORARY TABLE archived_month_totals"),
    ("day totals: GROUP BY account, day", "CREATE TEMPORARY TABLE archived_day_totals"),
    ("archived month's row", 'INSERT INTO "ledger_archivedjournalmonth"'),
    ("store account totals", "INSERT INTO ledger_archivedaccounttotal"),
    ("store day totals", "INSERT INTO ledger_archiveddaytotal"),
    ("lock accounts, transactions, journal", "SAVEPOINT"),
    ("newest id unchanged", "SELECT COALESCE(MAX(id), 0) FROM ledger_entry_p"),
    ("DETACH PARTITION", "ALTER TABLE ledger_entry DETACH PARTITION"),
    ("default partition holds none of it", "SELECT COUNT(*) FROM ledger_entry_default"),
)
COMMIT_PHASE = "commit"
LOCK_STATEMENT = DETACH_LOCKS[0]
_SAVEPOINT_NAME = re.compile(r"\b(SAVEPOINT) \S+")
_TICKS = os.sysconf("SC_CLK_TCK")


class BaselineDrift(Exception):
    """The raw detach no longer sends what the services send."""


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (a PostgreSQL backend)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class StatementClock:
    """Each statement sent with when it started and ended (``time.monotonic``, which every
    process on the machine reads alike), this process's CPU and its backend's CPU at both;
    ``mark()`` notes the same at an instant between statements (the start, the return)."""

    def __init__(self, backend_pid: int):
        self.backend_pid = backend_pid
        self.statements: list[tuple[str, tuple, tuple]] = []
        self.marks: list[tuple] = []

    def now(self) -> tuple[float, float, float]:
        return time.monotonic(), time.process_time(), process_cpu(self.backend_pid)

    def mark(self) -> None:
        self.marks.append(self.now())

    @contextlib.contextmanager
    def statement(self, sql: str):
        began = self.now()
        try:
            yield
        finally:
            self.statements.append((sql, began, self.now()))

    def __call__(self, execute, sql, params, many, context):
        """As a Django execute wrapper."""
        with self.statement(sql):
            return execute(sql, params, many, context)

    def send(self, raw, sql: str, params=None):
        """A statement on a bare psycopg connection."""
        with self.statement(sql):
            return raw.execute(sql, params)


def statement_shape(sql: str) -> str:
    """A statement with its white space collapsed and its savepoint's name taken out."""
    return _SAVEPOINT_NAME.sub(r"\1 ?", " ".join(sql.split()))


def phases_of(statements, started, returned) -> list[dict]:
    """The detach's phases (``DETACH_PHASES``, after its plan, then its commit) from the
    clock's statements and its marks at the call and at the return: each phase's wall seconds,
    client and backend CPU seconds and statements, from its first statement's start to the
    next phase's (so the client's work between statements counts). Then the locked part: from
    the last lock attempt (the one that got the locks) to the return. Raises
    ``BaselineDrift`` when a phase never began: the services' statements changed."""
    starts = [(PLAN_PHASE, started, 0)]
    current = -1
    for number, (sql, began, _ended) in enumerate(statements):
        upcoming = current + 1
        if upcoming < len(DETACH_PHASES) and sql.lstrip().startswith(DETACH_PHASES[upcoming][1]):
            current = upcoming
            starts.append((DETACH_PHASES[current][0], began, number))
    if current != len(DETACH_PHASES) - 1:
        raise BaselineDrift(
            f"the detach's phase {DETACH_PHASES[current + 1][0]!r} was not found in what it "
            "sent: its statements changed"
        )
    starts.append((COMMIT_PHASE, statements[-1][2], len(statements)))
    bounds = [*starts, (None, returned, len(statements))]
    phases = []
    for (name, at, first), (_, until, after) in zip(bounds, bounds[1:], strict=False):
        phases.append(
            {
                "phase": name,
                "wall": until[0] - at[0],
                "client": until[1] - at[1],
                "backend": until[2] - at[2],
                "statements": after - first,
            }
        )
    attempts = [began for sql, began, _ in statements if sql.lstrip().startswith(LOCK_STATEMENT)]
    locked_from = attempts[-1]
    phases.append(
        {
            "phase": "locked part (last lock attempt to return)",
            "wall": returned[0] - locked_from[0],
            "client": returned[1] - locked_from[1],
            "backend": returned[2] - locked_from[2],
            "statements": sum(1 for _, began, _ in statements if began[0] >= locked_from[0]),
            "lock attempts": len(attempts),
            "locked from": locked_from[0],
            "started": started[0],
            "returned": returned[0],
        }
    )
    return phases


def check_detach_mirror(services: list[str], raw: list[str]) -> str:
    """The services' statements from the month's figures on against the raw side's: the same
    shapes in the same order, or ``BaselineDrift`` naming the first that differs."""
    heavy = next(
        (n for n, sql in enumerate(services) if sql.lstrip().startswith(DETACH_PHASES[0][1])),
        len(services),
    )
    ours = [statement_shape(sql) for sql in services[heavy:]]
    theirs = [statement_shape(sql) for sql in raw]
    line = f"detach: services {len(ours)} statements after its plan, raw {len(theirs)}"
    if ours != theirs:
        for number, (one, other) in enumerate(zip(ours, theirs, strict=False), start=1):
            if one != other:
                difference = f"statement {number}:\n  services: {one}\n  raw:      {other}"
                break
        else:
            longer, side = (ours, "services") if len(ours) > len(theirs) else (theirs, "raw")
            difference = f"only {side} sends: {longer[min(len(ours), len(theirs))]}"
        raise BaselineDrift(f"{line}\n{difference}\nthe raw detach no longer mirrors the services")
    return line


def raw_detach(raw, plan, *, now: dt.datetime) -> tuple[StatementClock, int]:
    """The detach's statements after its plan, bare, in one transaction that commits, on a
    bare connection: the clock and the day totals stored. Retries the locks as the services
    do (all three with NOWAIT in a savepoint, again after a pause while one is busy)."""
    import psycopg

    clock = StatementClock(raw.info.backend_pid)
    table = plan.table_name
    day_values = {"starts_at": plan.starts_at, "ends_at": plan.ends_at, "kinds": DETACH_KINDS}
    clock.mark()
    with raw.transaction():
        entries, _accounts, _sum, newest_id = clock.send(
            raw, DETACH_MONTH_FIGURES.format(table=table)
        ).fetchone()
        clock.send(raw, DETACH_ACCOUNT_TOTALS.format(table=table))
        clock.send(raw, DETACH_DAY_TOTALS.format(table=table), day_values)
        clock.send(raw, DETACH_CHECKS_NOW)
        (archived_id,) = clock.send(
            raw,
            DETACH_ARCHIVED_MONTH,
            [
                plan.month,
                plan.starts_at,
                plan.ends_at,
                table,
                entries,
                plan.reconciliation_run.pk,
                now,
                "",
                True,
            ],
        ).fetchone()
        clock.send(raw, DETACH_STORE_ACCOUNT_TOTALS, [archived_id])
        day_totals = clock.send(raw, DETACH_STORE_DAY_TOTALS, [archived_id]).rowcount
        while True:
            try:
                clock.send(raw, 'SAVEPOINT "raw_lock"')
                for sql in DETACH_LOCKS:
                    clock.send(raw, sql)
                clock.send(raw, 'RELEASE SAVEPOINT "raw_lock"')
                break
            except psycopg.errors.LockNotAvailable:
                clock.send(raw, 'ROLLBACK TO SAVEPOINT "raw_lock"')
                time.sleep(LOCK_PAUSE_SECONDS)
        if clock.send(raw, DETACH_NEWEST_ID.format(table=table)).fetchone()[0] != newest_id:
            raise SystemExit("an entry of the month was added while the raw side summed it")
        clock.send(raw, DETACH_PARTITION.format(table=table))
        if clock.send(raw, DETACH_DEFAULT_LEFT, [plan.ends_at]).fetchone()[0]:
            raise SystemExit("an entry of the month reached the default partition")
    clock.mark()
    return clock, day_totals


def put_month_back(raw, month: dt.date) -> None:
    """Undo a detach (the services' or the raw side's): the archived rows deleted, the month's
    partition made again (``ledger.partitions.create_partition``) and its rows copied back
    from the detached table, which is dropped; the tables rewritten, so the next detach starts
    from the pages the build left. Does nothing when the month is attached."""
    from ledger import partitions

    table = partitions.partition_name(month)
    if month in partitions.attached_months():
        return
    parked = f"{table}_detached"
    with raw.transaction():
        # The archived tables are append-only by trigger; the replica role skips it.
        raw.execute("SET LOCAL session_replication_role = replica")
        raw.execute(
            "DELETE FROM ledger_archiveddaytotal WHERE archived_month_id IN "
            "(SELECT id FROM ledger_archivedjournalmonth WHERE month = %s)",
            [month],
        )
        raw.execute(
            "DELETE FROM ledger_archivedaccounttotal WHERE archived_month_id IN "
            "(SELECT id FROM ledger_archivedjournalmonth WHERE month = %s)",
            [month],
        )
        raw.execute("DELETE FROM ledger_archivedjournalmonth WHERE month = %s", [month])
        raw.execute(f"ALTER TABLE {table} RENAME TO {parked}")
    partitions.create_partition(month)
    with raw.transaction():
        raw.execute("SET LOCAL session_replication_role = replica")
        raw.execute(f"INSERT INTO {table} OVERRIDING SYSTEM VALUE SELECT * FROM {parked}")  # noqa: S608 - names built from a date
        raw.execute(f"DROP TABLE {parked}")
    for name in (
        "ledger_archiveddaytotal",
        "ledger_archivedaccounttotal",
        "ledger_archivedjournalmonth",
    ):
        raw.execute(f"VACUUM FULL {name}")
    raw.execute(f"VACUUM (FREEZE, ANALYZE) {table}")
    raw.execute("CHECKPOINT")


def put_archived_months_back(raw) -> None:
    """Every month a detach left detached (a run stopped half-way) back in the journal."""
    months = [
        month
        for (month,) in raw.execute(
            "SELECT month FROM ledger_archivedjournalmonth ORDER BY month DESC"
        ).fetchall()
    ]
    for month in months:
        put_month_back(raw, month)


def relation_bytes(raw, name: str) -> tuple[int, int]:
    """(table, indexes) bytes of a relation."""
    return raw.execute(
        "SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", [name, name]
    ).fetchone()


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (the largest for fraction 1)."""
    ordered = sorted(values)
    rank = max(1, -(-int(fraction * 1000) * len(ordered) // 1000))
    return ordered[min(rank, len(ordered)) - 1]


def posting_waits(postings, *, before_from, detach_from, locked_from, detach_to) -> dict:
    """The postings' latencies (``postings``: (began, ended) monotonic instants) in three
    windows: before the detach began (from ``before_from``), those that overlapped the detach,
    and those that overlapped its locked part. Each: count, median, p99, max seconds."""
    windows = {
        "before": [b for b in postings if before_from <= b[0] and b[1] <= detach_from],
        "during the detach": [b for b in postings if b[1] > detach_from and b[0] < detach_to],
        "during its locked part": [b for b in postings if b[1] > locked_from and b[0] < detach_to],
    }
    figures = {}
    for name, chosen in windows.items():
        latencies = [ended - began for began, ended in chosen]
        figures[name] = (
            {
                "count": len(latencies),
                "median": percentile(latencies, 0.5),
                "p99": percentile(latencies, 0.99),
                "max": max(latencies),
            }
            if latencies
            else {"count": 0}
        )
    return figures


def poster(database_url: str, commands) -> None:
    """One client posting purchases (the kiosk's debit: the inmate's lock, then
    ``post_purchase``) one after another, round robin over some of the facility's inmates,
    from "post" until "halt"; answers with each posting's (began, ended)."""
    setup_django(database_url)
    import uuid

    from django.db import connection, transaction
    from django.utils import timezone

    from facilities.models import Inmate
    from ledger import services as ledger_services
    from ledger.locks import lock_inmate_accounts

    facility_id = commands.recv()
    inmate_ids = list(
        Inmate.objects.filter(facility_id=facility_id)
        .order_by("id")
        .values_list("id", flat=True)[:POSTER_INMATES]
    )
    commands.send(len(inmate_ids))
    prefix = uuid.uuid4().hex[:8]
    count = 0
    while True:
        command = commands.recv()
        if command == "stop":
            connection.close()
            commands.send(None)
            return
        postings = []
        while not commands.poll():
            inmate_id = inmate_ids[count % len(inmate_ids)]
            count += 1
            began = time.monotonic()
            with transaction.atomic(), connection.cursor() as cursor:
                locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
                ledger_services.post_purchase(
                    cursor,
                    locked=locked,
                    amount_fen=POSTER_PURCHASE_FEN,
                    idempotency_scope="kiosk:detachbench",
                    idempotency_key=f"{prefix}-{count}",
                    request_hash=ledger_services.purchase_request_hash(
                        inmate_id=inmate_id, amount_fen=POSTER_PURCHASE_FEN, memo=""
                    ),
                    memo="",
                    now=timezone.now(),
                )
            postings.append((began, time.monotonic()))
        commands.recv()  # the halt
        commands.send(postings)


POSTER_INMATES = 1_000
POSTER_PURCHASE_FEN = 1
QUIET_SECONDS = 3.0  # the postings measured before each detach begins


def detach_sizes(raw, plan, archived_id: int) -> dict:
    """Rows and bytes the detach kept, beside the month it detached."""
    day_kinds = raw.execute(
        f"SELECT COUNT(*) FROM {plan.table_name} e JOIN ledger_account a ON a.id = e.account_id "  # noqa: S608 - a name built from a date
        "WHERE a.kind = ANY(%s)",
        [DETACH_KINDS],
    ).fetchone()[0]
    counts = {
        table: raw.execute(
            f"SELECT COUNT(*) FROM {table} WHERE archived_month_id = %s",  # noqa: S608 - this module's names
            [archived_id],
        ).fetchone()[0]
        for table in ("ledger_archivedaccounttotal", "ledger_archiveddaytotal")
    }
    (entries,) = raw.execute(f"SELECT COUNT(*) FROM {plan.table_name}").fetchone()  # noqa: S608 - a name built from a date
    return {
        "entries": entries,
        "entries on day-total accounts": day_kinds,
        "account totals": counts["ledger_archivedaccounttotal"],
        "day totals": counts["ledger_archiveddaytotal"],
        "bytes": {
            name: relation_bytes(raw, table)
            for name, table in (
                ("the detached partition", plan.table_name),
                ("account totals", "ledger_archivedaccounttotal"),
                ("day totals", "ledger_archiveddaytotal"),
            )
        },
    }


class Poster:
    def __init__(self, database_url: str, facility_id: int):
        context = multiprocessing.get_context("spawn")
        self.commands, theirs = context.Pipe()
        self.process = context.Process(target=poster, args=(database_url, theirs), daemon=True)
        self.process.start()
        self.commands.send(facility_id)
        self.inmates = self.commands.recv()

    def start(self) -> None:
        self.commands.send("post")

    def halt(self) -> list:
        self.commands.send("halt")
        return self.commands.recv()

    def stop(self) -> None:
        self.commands.send("stop")
        self.commands.recv()
        self.process.join(timeout=30)


def detach_once(side: str, work, raw, plan) -> tuple[list, list, int, int]:
    """One detach by ``side``: (its phases, the statements it sent, the archived month's id,
    day totals stored). The month stays detached: ``put_month_back`` undoes it."""
    from django.utils import timezone

    if side == "services":
        statements, marks, archived_id, day_totals = work.ask("detach")
    else:
        clock, day_totals = raw_detach(raw, plan, now=timezone.now())
        statements, marks = clock.statements, clock.marks
        archived_id = raw.execute(
            "SELECT id FROM ledger_archivedjournalmonth WHERE month = %s", [plan.month]
        ).fetchone()[0]
    return phases_of(statements, marks[0], marks[-1]), statements, archived_id, day_totals


def measure_detach(options, work, raw, *, database_url: str, facility_id: int) -> dict:
    """The detach of the journal's oldest month, as ``manage.py detach_journal_month`` does it
    (``ledger.archive.detach_oldest_month`` in the worker), beside its statements sent bare
    (``raw_detach``), alternating which goes first, each undone after (``put_month_back``);
    the raw side must send what the services send (``check_detach_mirror``). Then once more
    each way with one client posting purchases in a loop, timing each posting."""
    from ledger import archive

    seconds, findings, examples = work.ask("reconcile", False)
    print(f"\nreconciliation (the clean run a detach needs): {seconds:.2f} s, {findings} findings")
    if findings:
        print("\n".join(f"    {example}" for example in examples))
        raise SystemExit("the loaded ledger does not reconcile")
    plan = archive.plan_detach()
    entries, accounts, _sum, _newest = archive.month_figures(plan)  # its pages read once
    print(
        f"detach of {plan.month:%Y-%m} ({plan.table_name}): {entries:,} entries on "
        f"{accounts:,} accounts",
        flush=True,
    )
    result = {"runs": {"services": [], "raw": []}, "plan": plan}
    checked = {}
    for round_number in range(options.rounds):
        sides = ("raw", "services") if round_number % 2 == 0 else ("services", "raw")
        for side in sides:
            phases, statements, archived_id, day_totals = detach_once(side, work, raw, plan)
            if side == "services" and "sizes" not in result:
                result["sizes"] = detach_sizes(raw, plan, archived_id)
            checked.setdefault(side, [sql for sql, _, _ in statements])
            put_month_back(raw, plan.month)
            result["runs"][side].append(phases)
            print(
                f"  {side}: {detach_seconds(phases):.2f} s (locked part {phases[-1]['wall']:.2f}"
                f" s, {phases[-1]['lock attempts']} lock attempts), {day_totals:,} day totals",
                flush=True,
            )
            if len(checked) == 2 and "mirror" not in result:
                result["mirror"] = check_detach_mirror(checked["services"], checked["raw"])
                print(f"  {result['mirror']}", flush=True)
    posting = Poster(database_url, facility_id)
    try:
        for side in ("services", "raw"):
            posting.start()
            time.sleep(QUIET_SECONDS + 1)  # the first second warms the client
            phases, _statements, _archived_id, _day_totals = detach_once(side, work, raw, plan)
            time.sleep(0.5)
            postings = posting.halt()
            put_month_back(raw, plan.month)
            locked = phases[-1]
            result.setdefault("posting", {})[side] = {
                "phases": phases,
                "waits": posting_waits(
                    postings,
                    before_from=postings[0][0] + 1 if postings else 0,
                    detach_from=locked["started"],
                    locked_from=locked["locked from"],
                    detach_to=locked["returned"],
                ),
            }
            print(f"  {side} with one client posting: {locked['lock attempts']} lock attempts")
    finally:
        posting.stop()
    return result


def detach_seconds(phases: list[dict]) -> float:
    """The whole detach's wall seconds, from the call to the return."""
    return phases[-1]["returned"] - phases[-1]["started"]


def report_detach(options, result: dict, peak_mb: float) -> None:
    """Each side's best run phase by phase, the ratio, the rows and bytes kept, and the
    postings' latencies before and during the detach."""
    best = {side: min(runs, key=detach_seconds) for side, runs in result["runs"].items()}
    print(f"\ndetach, best of {options.rounds} (wall s / client CPU s / backend CPU s):")
    print(f"  {'phase':<42} {'services':>22} {'raw':>22}")
    for ours, theirs in zip(best["services"], best["raw"], strict=True):
        cells = [
            f"{p['wall']:7.3f} {p['client']:6.2f} {p['backend']:6.2f}"
            if p["phase"] != PLAN_PHASE or side == "services"
            else f"{'(not sent)':>22}"
            for side, p in (("services", ours), ("raw", theirs))
        ]
        print(f"  {ours['phase']:<42} {cells[0]:>22} {cells[1]:>22}")
    totals = {side: detach_seconds(phases) for side, phases in best.items()}
    # The raw side has no plan: the ratio is of the work after it.
    after_plan = {side: totals[side] - best[side][0]["wall"] for side in best}
    print(f"  {'whole detach':<42} {totals['services']:7.3f} s{'':<14} {totals['raw']:7.3f} s")
    sizes = result["sizes"]
    entries = sizes["entries"]
    print(
        f"rows kept for {entries:,} entries ({sizes['entries on day-total accounts']:,} on "
        "spendable, held, sales and fees accounts):"
    )
    for name in ("account totals", "day totals"):
        print(f"  {name}: {sizes[name]:,} ({sizes[name] / entries:.3f} per entry)")
    partition = sum(sizes["bytes"]["the detached partition"])
    print("bytes (table + indexes):")
    for name, (heap, indexes) in sizes["bytes"].items():
        print(
            f"  {name}: {heap / 2**20:.1f} + {indexes / 2**20:.1f} MB"
            f" ({(heap + indexes) / partition:.3f} of the partition)"
        )
    for side, posting in result.get("posting", {}).items():
        phases = posting["phases"]
        print(
            f"one client posting purchases, detach by {side}: {detach_seconds(phases):.2f} s, "
            f"locked part {phases[-1]['wall']:.3f} s after {phases[-1]['lock attempts']} lock "
            "attempts; posting latency (count, median, p99, max ms):"
        )
        for window, figures in posting["waits"].items():
            if figures["count"]:
                print(
                    f"  {window:<24} {figures['count']:6,} {1000 * figures['median']:8.1f}"
                    f" {1000 * figures['p99']:8.1f} {1000 * figures['max']:8.1f}"
                )
            else:
                print(f"  {window:<24} none")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"peak worker MB: {peak_mb:.0f}")
    # Backend CPU holds on a busy machine where wall time does not.
    backend = {side: sum(p["backend"] for p in phases[1:-1]) for side, phases in best.items()}
    print(
        f"detach/raw, after the plan: {after_plan['services'] / after_plan['raw']:.2f}; "
        f"backend CPU {backend['services']:.2f} s / {backend['raw']:.2f} s = "
        f"{backend['services'] / max(backend['raw'], 0.01):.2f}; locked part services "
        f"{best['services'][-1]['wall']:.3f} s, raw {best['raw'][-1]['wall']:.3f} s"
    )
    print(f"day totals per entry: {sizes['day totals'] / entries:.3f}")


# --- the worker ---------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def worker(database_url: str, commands) -> None:
    """Runs the services, one command at a time, in a process of its own so that its peak
    memory is theirs alone."""
    setup_django(database_url)
    from django.db import connection

    from ledger import chunks
    from ledger.batch import reconcile_ledger, roll_over_facility, start_rollover
    from ledger.models import BatchChunk, ReconciliationFinding, ScheduledRun
    from ledger.reconciliation import CHECKS, run_checks

    while True:
        command, *args = commands.recv()
        if command == "rollover":
            facility_id, now, chunk_size = args
            began = time.perf_counter()
            run = roll_over_facility(
                facility_id=facility_id, now=now, trigger="benchmark", chunk_size=chunk_size
            )
            commands.send((time.perf_counter() - began, run.counts))
        elif command == "plan rollover":
            facility_id, now, chunk_size = args
            began = time.perf_counter()
            run = start_rollover(
                facility_id=facility_id, now=now, trigger="benchmark", chunk_size=chunk_size
            )
            commands.send((time.perf_counter() - began, run.pk))
        elif command == "work on":
            # As a worker's ``work_on_run`` does: claim and do chunks until none is left.
            (run_id,) = args
            name = f"bench-{os.getpid()}"
            began = time.perf_counter()
            chunks.work_through(run_id, worker=name)
            seconds = time.perf_counter() - began
            commands.send((seconds, BatchChunk.objects.filter(run_id=run_id, worker=name).count()))
        elif command == "run":
            (run_id,) = args
            run = ScheduledRun.objects.get(pk=run_id)
            commands.send((run.status, run.counts))
        elif command == "reconcile":
            (exact,) = args
            began = time.perf_counter()
            run = reconcile_ledger(trigger="benchmark", exact=exact)
            seconds = time.perf_counter() - began
            findings = [
                str(finding)
                for finding in ReconciliationFinding.objects.filter(run=run).order_by("id")[:10]
            ]
            commands.send((seconds, run.counts.get("findings", 0), findings))
        elif command == "checks":
            seconds = {}
            for check in CHECKS:
                for exact in (False, True):
                    began = time.perf_counter()
                    run_checks(checks=(check,), exact=exact)
                    seconds[check.name, exact] = time.perf_counter() - began
            commands.send(seconds)
        elif command == "detach":
            # As ``manage.py detach_journal_month`` does, each statement timed.
            from ledger import archive

            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (backend_pid,) = cursor.fetchone()
            clock = StatementClock(backend_pid)
            clock.mark()
            with connection.execute_wrapper(clock):
                archived = archive.detach_oldest_month()
            clock.mark()
            day_totals = archived.day_totals.count()
            commands.send((clock.statements, clock.marks, archived.pk, day_totals))
        elif command == "reconnect":
            # After the journal's layout was swapped: a new session, as a new worker has.
            connection.close()
            commands.send(None)
        elif command == "stop":
            connection.close()
            commands.send(peak_rss_mb())
            return


class Worker:
    def __init__(self, database_url: str):
        context = multiprocessing.get_context("spawn")
        self.commands, theirs = context.Pipe()
        self.process = context.Process(target=worker, args=(database_url, theirs), daemon=True)
        self.process.start()

    def ask(self, *command):
        self.tell(*command)
        return self.answer()

    def tell(self, *command):
        self.commands.send(command)

    def answer(self):
        return self.commands.recv()

    def stop(self) -> float:
        peak_mb = self.ask("stop")
        self.process.join(timeout=30)
        # The kernel's figure for waited-for children, as a cross-check.
        children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return max(peak_mb, children_mb)


# --- the run ------------------------------------------------------------------------------


def server_settings(raw) -> str:
    version, shared_buffers, work_mem, workers = raw.execute(
        "SELECT current_setting('server_version'), current_setting('shared_buffers'), "
        "current_setting('work_mem'), current_setting('max_parallel_workers_per_gather')"
    ).fetchone()
    return (
        f"PostgreSQL {version.split()[0]} (shared_buffers {shared_buffers}, work_mem {work_mem},"
        f" max_parallel_workers_per_gather {workers}); {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start"
    )


def table_sizes(raw) -> str:
    # A partitioned table (the journal's entries) is the sum of its partitions.
    rows = raw.execute(
        "SELECT c.relname, pg_size_pretty(SUM(pg_table_size(COALESCE(t.relid, c.oid)))), "
        "pg_size_pretty(SUM(pg_indexes_size(COALESCE(t.relid, c.oid)))) FROM pg_class c "
        "LEFT JOIN LATERAL pg_partition_tree(c.oid) t ON true "
        "WHERE c.relname IN ('ledger_entry', 'ledger_transaction', 'ledger_account', "
        "'ledger_deposit', 'ledger_monthlyperiod', 'facilities_inmate') "
        "GROUP BY c.relname ORDER BY c.relname"
    ).fetchall()
    return ", ".join(f"{name} {heap} + {indexes} indexes" for name, heap, indexes in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inmates", type=int, default=10_000, help="active inmates")
    parser.add_argument(
        "--entries", type=int, default=100_000, help="journal entries (two per transaction)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="times each side is measured, alternating which goes first; the best counts "
        "(default 2: the first round also finds the tables cold)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep a database already built at this size"
    )
    parser.add_argument(
        "--only",
        choices=("rollover", "reconciliation", "detach"),
        help="measure one of the two (the other's ratio line then says it was not measured), "
        "or only the detach of the journal's oldest month",
    )
    parser.add_argument(
        "--months",
        type=int,
        help="months the journal spans, ending with last month (default 1; 2 with --only "
        "detach, which detaches the first of them)",
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=10_000,
        help="inmates per rollover chunk, for one worker and for two (default 10,000)",
    )
    parser.add_argument(
        "--checked-load",
        action="store_true",
        help="load the journal with every trigger on (slower; the data is checked anyway)",
    )
    parser.add_argument(
        "--compare-unpartitioned",
        action="store_true",
        help="measure the rollover and the reconciliation on the journal partitioned by month "
        "and on an unpartitioned copy of it (same rows, indexes, constraints and triggers), "
        "in place of the usual figures",
    )
    options = parser.parse_args()
    if options.inmates < 1 or options.entries < 2:
        parser.error("at least one inmate and one transaction (two entries)")
    if "DATABASE_URL" not in os.environ:
        parser.error("set DATABASE_URL to a PostgreSQL URL")
    transactions = options.entries // 2
    if options.months is None:
        options.months = 2 if options.only == "detach" else 1
    if options.only == "detach" and options.months < 2:
        parser.error("--only detach needs a journal of at least two months (--months 2)")

    database_url = bench_database_url(os.environ["DATABASE_URL"])
    setup_django(database_url)
    params = raw_connection_params()
    built = (
        existing_data(params, options.inmates, transactions, options.months)
        if options.reuse
        else None
    )
    if built:
        facility_id, data_month = built
        print(
            f"reusing {params['dbname']}: {options.inmates:,} inmates, {2 * transactions:,} entries"
            f" over {options.months} month(s)"
        )
    else:
        facility_id, data_month = build_data(
            params,
            inmates=options.inmates,
            transactions=transactions,
            checked=options.checked_load,
            months=options.months,
        )

    month = next_month(data_month)
    raw = open_raw(params)
    restore_partitioned(raw)  # should a comparison have been stopped half-way
    put_archived_months_back(raw)  # should a detach have been stopped half-way
    reset_periods(raw, facility_id=facility_id, data_month=data_month)
    print(server_settings(raw))
    print(table_sizes(raw), flush=True)

    if options.compare_unpartitioned:
        compare_layouts(options, database_url, raw, facility_id, data_month, transactions)
        return
    work = Worker(database_url)
    if options.only == "detach":
        try:
            result = measure_detach(
                options, work, raw, database_url=database_url, facility_id=facility_id
            )
        except BaselineDrift as drift:
            raise SystemExit(str(drift)) from drift
        finally:
            peak_mb = work.stop()
            raw.close()
        report_detach(options, result, peak_mb)
        return
    # A second worker for the shared rollover (ledger.chunks): both claim the same run's chunks.
    helper = Worker(database_url) if options.only != "reconciliation" else None
    try:
        best = {}

        def keep_best(name: str, seconds: float) -> None:
            best[name] = min(best.get(name, seconds), seconds)

        if options.only != "reconciliation":
            measure_rollover(
                options, (work, helper), raw, keep_best, facility_id, data_month, month
            )
        if options.only != "rollover":
            measure_reconciliation(options, work, raw, keep_best, transactions)
    finally:
        peak_mb = work.stop()
        if helper is not None:
            helper.stop()
        raw.close()
    report(options, best, peak_mb)


def compare_layouts(options, database_url, raw, facility_id, data_month, transactions) -> None:
    work = Worker(database_url)
    try:
        best = measure_layouts(
            options,
            work,
            raw,
            facility_id=facility_id,
            data_month=data_month,
            transactions=transactions,
        )
    except LayoutDrift as drift:
        raise SystemExit(str(drift)) from drift
    finally:
        peak_mb = work.stop()
        raw.close()
    report_layouts(options, best, peak_mb)


def shared_rollover(workers, *, facility_id, now, chunk_size) -> tuple:
    """One worker plans the run, then every worker claims and does its chunks at once; the
    time is from the plan to the last worker's return (the run finished then)."""
    began = time.perf_counter()
    _plan_s, run_id = workers[0].ask("plan rollover", facility_id, now, chunk_size)
    for worker in workers:
        worker.tell("work on", run_id)
    chunks_done = [worker.answer()[1] for worker in workers]
    seconds = time.perf_counter() - began
    status, counts = workers[0].ask("run", run_id)
    if status != "succeeded":
        raise SystemExit(f"the shared rollover ended {status}")
    return seconds, counts, chunks_done


def measure_rollover(options, workers, raw, keep_best, facility_id, data_month, month) -> None:
    from facilities.models import Facility

    facility = Facility.objects.get(pk=facility_id)
    rollover_at = dt.datetime.combine(month, ROLLOVER_LOCAL_TIME, ZoneInfo(facility.timezone))
    print(
        f"\nrollover of {options.inmates:,} inmates, {data_month:%Y-%m} -> {month:%Y-%m}"
        f" at {rollover_at:%Y-%m-%d %H:%M %Z}",
        flush=True,
    )
    sides = ("raw", "services", "two workers")
    expected = {"periods_closed": options.inmates, "periods_opened": options.inmates}
    for round_number in range(options.rounds):
        for side in sides if round_number % 2 == 0 else sides[::-1]:
            reset_periods(raw, facility_id=facility_id, data_month=data_month)
            if side == "raw":
                close_s, open_s, opened = raw_rollover(
                    raw, facility_id=facility_id, month=month, now=rollover_at
                )
                keep_best("raw close", close_s)
                keep_best("raw open", open_s)
                keep_best("raw rollover", close_s + open_s)
                print(f"  raw: close {close_s:.2f} s, open {open_s:.2f} s ({opened:,})")
            elif side == "services":
                seconds, counts = workers[0].ask(
                    "rollover", facility_id, rollover_at, options.chunk_size
                )
                keep_best("roll_over_facility", seconds)
                print(f"  roll_over_facility (one worker): {seconds:.2f} s {counts}", flush=True)
            else:
                seconds, counts, chunks_done = shared_rollover(
                    workers, facility_id=facility_id, now=rollover_at, chunk_size=options.chunk_size
                )
                keep_best("two workers", seconds)
                print(
                    f"  two workers: {seconds:.2f} s {counts}, chunks done by each {chunks_done}",
                    flush=True,
                )
            if side != "raw" and counts != expected:
                raise SystemExit(f"the rollover did not do the expected work: {counts}")


def measure_reconciliation(options, work, raw, keep_best, transactions) -> None:
    print(f"\nreconciliation of {2 * transactions:,} entries", flush=True)
    raw_sum_per_account(raw)  # the journal's pages read once before either side is timed
    for round_number in range(options.rounds):
        for side in ("raw", "services") if round_number % 2 == 0 else ("services", "raw"):
            if side == "raw":
                seconds = raw_sum_per_account(raw)
                keep_best(GROUP_BY, seconds)
                print(f"  {GROUP_BY} (the yardstick): {seconds:.2f} s", flush=True)
            else:
                seconds, findings, examples = work.ask("reconcile", False)
                keep_best("reconcile_ledger", seconds)
                print(f"  reconcile_ledger: {seconds:.2f} s, {findings} findings", flush=True)
                if findings:
                    print("\n".join(f"    {example}" for example in examples))
                    raise SystemExit("the loaded ledger does not reconcile")
    seconds, findings, _ = work.ask("reconcile", True)
    keep_best("reconcile_ledger exact", seconds)
    print(f"  reconcile_ledger(exact=True): {seconds:.2f} s, {findings} findings", flush=True)
    check_seconds = work.ask("checks")
    print(f"  each check on its own:{'screened':>27} {'exact':>10}")
    names = dict.fromkeys(name for name, _ in check_seconds)
    for name in names:
        print(
            f"    {name:<38} {check_seconds[name, False]:6.2f} s {check_seconds[name, True]:8.2f} s"
        )
    totals = [
        sum(v for (_, exact), v in check_seconds.items() if exact == e) for e in (False, True)
    ]
    print(f"    {'all checks':<38} {totals[0]:6.2f} s {totals[1]:8.2f} s", flush=True)


def measure_layouts(options, work, raw, *, facility_id, data_month, transactions) -> dict:
    """Both layouts of the journal on the same rows: the unpartitioned copy is built and
    checked against the partitioned journal (LayoutDrift if they differ in more than
    partitioning), then each round measures each layout in turn, alternating which goes
    first, the rollover and the screened reconciliation each beside its raw baseline, as
    the run without ``--compare-unpartitioned`` measures them. The journal is partitioned
    again at the end, and the copy dropped. Returns the best seconds per layout."""
    from facilities.models import Facility

    progress = Progress()
    month = next_month(data_month)
    facility = Facility.objects.get(pk=facility_id)
    rollover_at = dt.datetime.combine(month, ROLLOVER_LOCAL_TIME, ZoneInfo(facility.timezone))
    expected = {"periods_closed": options.inmates, "periods_opened": options.inmates}
    print(
        f"\nthe journal's {2 * transactions:,} entries partitioned by month and in one plain "
        "table: rollover and reconciliation on each",
        flush=True,
    )
    restore_partitioned(raw)
    best = {layout: {} for layout in LAYOUTS}
    try:
        with progress.step(f"{PARKED['unpartitioned']}: rows, indexes, constraints, triggers"):
            build_unpartitioned_copy(raw)
        with progress.step("the layouts differ in partitioning only (columns, indexes, triggers)"):
            check_layouts(raw)
        warmed = set()
        for round_number in range(options.rounds):
            first = round_number % 2 == 0
            for layout in LAYOUTS if first else LAYOUTS[::-1]:
                use_layout(raw, layout)
                work.ask("reconnect")
                seconds_of = best[layout]

                def keep(name, seconds, seconds_of=seconds_of):
                    seconds_of[name] = min(seconds_of.get(name, seconds), seconds)

                print(f"  {layout}, round {round_number + 1}:", flush=True)
                if options.only != "reconciliation":
                    for side in ("raw", "services") if first else ("services", "raw"):
                        reset_periods(raw, facility_id=facility_id, data_month=data_month)
                        if side == "raw":
                            close_s, open_s, opened = raw_rollover(
                                raw, facility_id=facility_id, month=month, now=rollover_at
                            )
                            keep("raw rollover", close_s + open_s)
                            print(
                                f"    rollover raw: close {close_s:.2f} s, open {open_s:.2f} s"
                                f" ({opened:,})",
                                flush=True,
                            )
                        else:
                            seconds, counts = work.ask(
                                "rollover", facility_id, rollover_at, options.chunk_size
                            )
                            if counts != expected:
                                raise SystemExit(
                                    f"the rollover did not do the expected work: {counts}"
                                )
                            keep("rollover", seconds)
                            print(f"    roll_over_facility: {seconds:.2f} s", flush=True)
                if options.only != "rollover":
                    if layout not in warmed:
                        raw_sum_per_account(raw)  # its pages read once before it is timed
                        warmed.add(layout)
                    for side in ("raw", "services") if first else ("services", "raw"):
                        if side == "raw":
                            seconds = raw_sum_per_account(raw)
                            keep("raw reconciliation", seconds)
                            print(f"    {GROUP_BY}: {seconds:.2f} s", flush=True)
                        else:
                            seconds, findings, examples = work.ask("reconcile", False)
                            print(
                                f"    reconcile_ledger: {seconds:.2f} s, {findings} findings",
                                flush=True,
                            )
                            if findings:
                                print("\n".join(f"      {example}" for example in examples))
                                raise SystemExit(f"the {layout} ledger does not reconcile")
                            keep("reconciliation", seconds)
    finally:
        restore_partitioned(raw)
    return best


def report_layouts(options, best, peak_mb) -> None:
    """The table layout × (services, raw, ratio), then one line per figure."""
    works = [
        (work, services, baseline)
        for work, services, baseline in (
            ("rollover", "roll_over_facility", "close + open, bare"),
            ("reconciliation", "reconcile_ledger, screened", GROUP_BY),
        )
        if work in best[LAYOUTS[0]]
    ]
    print(f"\nlayout x (services, raw, ratio), best of {options.rounds}:")
    for work, services, baseline in works:
        print(f"  {work}: services = {services}; raw = {baseline}")
    print(f"  {'layout':<15} {'work':<16} {'services':>10} {'raw':>10} {'ratio':>6}")
    for layout in LAYOUTS:
        for work, _, _ in works:
            services, raw = best[layout][work], best[layout][f"raw {work}"]
            print(f"  {layout:<15} {work:<16} {services:8.2f} s {raw:8.2f} s {services / raw:6.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for work, _, _ in works:
        for layout in LAYOUTS:
            ratio = best[layout][work] / best[layout][f"raw {work}"]
            print(f"{work}/raw, {layout}: {ratio:.2f}")
        print(
            f"{work}, partitioned/unpartitioned: services "
            f"{best['partitioned'][work] / best['unpartitioned'][work]:.2f}, raw "
            f"{best['partitioned'][f'raw {work}'] / best['unpartitioned'][f'raw {work}']:.2f}"
        )
    print(f"peak worker MB: {peak_mb:.0f}")


def report(options, best, peak_mb) -> None:
    from ledger.reconciliation import CHECKS

    ratios = {}
    print(f"\nbest of {options.rounds}:")
    if "roll_over_facility" in best:
        ratios["rollover"] = best["roll_over_facility"] / best["raw rollover"]
        print(
            f"  roll_over_facility {best['roll_over_facility']:.2f} s, raw "
            f"{best['raw rollover']:.2f} s (close {best['raw close']:.2f} s + open "
            f"{best['raw open']:.2f} s)"
        )
    if "two workers" in best:
        ratios["two workers/raw"] = best["two workers"] / best["raw rollover"]
        print(
            f"  rollover by two workers {best['two workers']:.2f} s against one "
            f"{best['roll_over_facility']:.2f} s (chunks of {options.chunk_size:,} inmates)"
        )
    exact_ratio = None
    if "reconcile_ledger" in best:
        ratios["reconciliation"] = best["reconcile_ledger"] / best[GROUP_BY]
        exact_ratio = best["reconcile_ledger exact"] / best[GROUP_BY]
        print(
            f"  reconcile_ledger ({len(CHECKS)} checks, screened) "
            f"{best['reconcile_ledger']:.2f} s, "
            f"with every exact query {best['reconcile_ledger exact']:.2f} s; "
            f"{GROUP_BY} {best[GROUP_BY]:.2f} s"
        )
    misses = [label for label, ratio in ratios.items() if ratio > TARGET_RATIO]
    if peak_mb >= TARGET_WORKER_MB:
        misses.append("worker memory")
    print(
        f"targets: ratios at most {TARGET_RATIO:g}, worker under {TARGET_WORKER_MB} MB; "
        + (f"missed: {', '.join(misses)}" if misses else "all measured met")
    )
    skipped = f"not measured (--only {options.only})"
    print("rollover/raw: " + (f"{ratios['rollover']:.2f}" if "rollover" in ratios else skipped))
    if "two workers/raw" in ratios:
        print(
            f"rollover by two workers/raw: {ratios['two workers/raw']:.2f} "
            f"(two workers/one: {best['two workers'] / best['roll_over_facility']:.2f})"
        )
    else:
        print(f"rollover by two workers/raw: {skipped}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for label, ratio in (
        ("reconciliation", ratios.get("reconciliation")),
        ("reconciliation exact", exact_ratio),
    ):
        print(f"{label}/one GROUP BY: " + (f"{ratio:.2f}" if ratio is not None else skipped))
    print(f"peak worker MB: {peak_mb:.0f}")


if __name__ == "__main__":
    main()
