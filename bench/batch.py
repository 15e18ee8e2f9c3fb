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
"""

import argparse
import contextlib
import datetime as dt
import multiprocessing
import os
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


def existing_data(params: dict, inmates: int, transactions: int) -> tuple[int, dt.date] | None:
    """The facility and data month of a database already built at this size, if there is one."""
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
                " (SELECT COUNT(*) FROM ledger_transaction t WHERE t.facility_id = f.id),"
                " (SELECT MIN(p.month) FROM ledger_monthlyperiod p WHERE p.facility_id = f.id)"
                " FROM facilities_facility f WHERE f.code = %s",
                [FACILITY_CODE],
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    if row is None or row[1:3] != (inmates, transactions) or row[3] is None:
        return None
    return row[0], row[3]


def build_data(params: dict, *, inmates: int, transactions: int, checked: bool) -> tuple:
    """Create the facility, inmates, accounts, last month's periods, deposits and journal.
    Returns (facility id, the month the data lives in)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from tqdm import tqdm

    from facilities.models import DEFAULT_BALANCE_CAP_FEN, DEFAULT_MONTHLY_CAP_FEN
    from facilities.services import create_facility

    progress = Progress()
    print(f"building {inmates:,} inmates and {2 * transactions:,} entries", flush=True)
    with progress.step(f"database {params['dbname']} created and migrated"):
        recreate_database(params)
        call_command("migrate", verbosity=0)

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
    month_start = dt.datetime.combine(month, dt.time(), zone)
    month_end = dt.datetime.combine(next_month(month), dt.time(), zone)

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
        choices=("rollover", "reconciliation"),
        help="measure one of the two (the other's ratio line then says it was not measured)",
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
    options = parser.parse_args()
    if options.inmates < 1 or options.entries < 2:
        parser.error("at least one inmate and one transaction (two entries)")
    if "DATABASE_URL" not in os.environ:
        parser.error("set DATABASE_URL to a PostgreSQL URL")
    transactions = options.entries // 2

    database_url = bench_database_url(os.environ["DATABASE_URL"])
    setup_django(database_url)
    params = raw_connection_params()
    built = existing_data(params, options.inmates, transactions) if options.reuse else None
    if built:
        facility_id, data_month = built
        print(
            f"reusing {params['dbname']}: {options.inmates:,} inmates, {2 * transactions:,} entries"
        )
    else:
        facility_id, data_month = build_data(
            params, inmates=options.inmates, transactions=transactions, checked=options.checked_load
        )

    month = next_month(data_month)
    raw = open_raw(params)
    reset_periods(raw, facility_id=facility_id, data_month=data_month)
    print(server_settings(raw))
    print(table_sizes(raw), flush=True)

    work = Worker(database_url)
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
