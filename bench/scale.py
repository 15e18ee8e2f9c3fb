"""Kiosk orders and deposits while the reports run, with the reports on the primary or on a
streaming replica.

    python bench/scale.py --seconds 20

Starts a throwaway primary and its streaming standby from the installed PostgreSQL binaries
(``tests/clusters.py``, as the replica tests do), migrates the primary, and sets up a facility
whose caps never run out, with one inmate (with money) and one kiosk per client and a product
in stock. Then 8 clients, each a process of its own, each loop a kiosk order
(``catalog.services.place_order``) and a family deposit (``reserve_deposit`` then
``credit_deposit``) for the given seconds, three ways: with no reports running (the baseline
of the same run), with 2 processes running the reports in a loop on the primary, and with the
same 2 processes reading on the replica (``commissary.replica.reads_that_can_wait``; each
loop checks it did read there). The three are cut into ``--rounds`` slices that alternate, so
they see the same background load. The reports are the dashboard's figures and the trust
balances at today (a sum over the facility's whole journal), the deposits, sales and cap
reports.

Prints orders/s and deposits/s for each way, the report loops done, and what the hot path keeps
with the reports on each side (with / without). Both clusters run on this machine with
``fsync=off``: it measures what the reports take from the primary's CPU, locks and caches, not
disks. The clusters are removed at the end.

    python bench/scale.py --primary-url postgres://bench@db1/commissary_bench \\
        --replica-url postgres://bench@db2/commissary_bench

uses an existing primary and its standby instead (the standby on a machine of its own, which
is where a replica can take the reports' work off the primary): no cluster is started. The
database named must be one for the benchmark alone: it is migrated and keeps the benchmark's
facility, orders and deposits. Before anything is written the benchmark checks that the
replica URL is a standby of that primary (in recovery, the same system identifier, the same
database) and that the primary is not, and stops with the reason otherwise.

    python bench/scale.py --split-cpus

stands two machines in for one: the machine's CPUs are cut in two halves, the primary (its
postmaster and every backend it forks) and the 8 hot-path clients are bound to the first, the
standby and the 2 report loops to the second, with ``sched_setaffinity`` (children inherit it).
The report loops' own Python runs on the second half both ways, as report workers on an
application server of their own would; what changes between the two ways is only where their
SQL runs. Memory, disk and the kernel stay shared, so it is a model of two machines, not two.
"""

import argparse
import datetime as dt
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from tests import clusters  # noqa: E402

CLIENTS = 8
REPORTERS = 2
DATABASE = "commissary"
DEPOSIT_FEN = 100
WAYS = ("no reports", "reports on the primary", "reports on the replica")
# With --split-cpus: (the primary's and hot path's CPUs, the standby's and report loops' CPUs).
NO_SPLIT: tuple[frozenset[int], frozenset[int]] | None = None


class NotAStandby(Exception):
    """The replica URL given is not a standby of the primary given (the message says why)."""


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _facts(url: str, role: str) -> tuple[bool, int, str]:
    """(in recovery, system identifier, database) of the server at ``url``."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
            return connection.execute(
                "SELECT pg_is_in_recovery(), (SELECT system_identifier FROM pg_control_system()),"
                " current_database()"
            ).fetchone()
    except psycopg.errors.InsufficientPrivilege as error:
        raise NotAStandby(
            f"the {role} at {_shown(url)} does not let this role read pg_control_system() "
            f"(every role may unless it was revoked; GRANT EXECUTE gives it back): {error}"
        ) from error
    except psycopg.Error as error:
        raise NotAStandby(f"the {role} at {_shown(url)} does not answer: {error}") from error


def check_standby(primary_url: str, replica_url: str) -> None:
    """Refuse (``NotAStandby``) unless ``replica_url`` is a streaming standby of the cluster at
    ``primary_url``, on the same database, and the primary is not itself in recovery: in
    recovery (``pg_is_in_recovery()``) and the same system identifier (``pg_control_system()``,
    fixed when the primary was made by initdb and copied to every standby made from it)."""
    primary = _facts(primary_url, "primary")
    replica = _facts(replica_url, "replica")
    if primary[0]:
        raise NotAStandby(f"{_shown(primary_url)} is in recovery: it is a standby, not a primary")
    if not replica[0]:
        raise NotAStandby(
            f"{_shown(replica_url)} is not in recovery: it is a primary, not a standby of "
            f"{_shown(primary_url)}"
        )
    if replica[1] != primary[1]:
        raise NotAStandby(
            f"{_shown(replica_url)} is a standby of another cluster (system identifier "
            f"{replica[1]}, the primary's is {primary[1]})"
        )
    if replica[2] != primary[2]:
        raise NotAStandby(
            f"{_shown(replica_url)} names database {replica[2]}, the primary URL {primary[2]}"
        )


def wait_for_replay(primary_url: str, replica_url: str, timeout: float = 120) -> None:
    """Until the standby has applied everything the primary has written so far."""
    with psycopg.connect(primary_url, autocommit=True, connect_timeout=10) as connection:
        (lsn,) = connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True, connect_timeout=10) as connection:
        while not connection.execute(
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn]
        ).fetchone()[0]:
            if time.monotonic() > deadline:
                sys.exit(f"the replica did not replay the primary's WAL within {timeout:.0f} s")
            time.sleep(0.2)


def _environment(primary_url: str, replica_url: str | None) -> None:
    """This process's settings, before Django starts."""
    os.environ["DATABASE_URL"] = primary_url
    os.environ.pop("DATABASE_REPLICA_URL", None)
    if replica_url:
        os.environ["DATABASE_REPLICA_URL"] = replica_url
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "false"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
    import django

    django.setup()


def set_up(clients: int, prefill_inmates: int) -> dict:
    """The facility, its inmates with money, kiosks and a product; returns what clients need."""
    from django.db import connection
    from django.test import override_settings

    from catalog.models import Category, FacilityProduct, Product
    from facilities import services as facility_services
    from facilities.models import KioskDevice
    from ledger import services as ledger_services

    run_id = uuid.uuid4().hex[:6]
    facility = facility_services.create_facility(code=f"scale-{run_id}", name="Scale")
    facility = facility_services.update_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=10**13, balance_cap_fen=10**13
    )
    # The PIN hash is no part of what is measured; a cheap hasher keeps set-up short.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        inmates = [
            facility_services.intake_inmate(
                facility=facility, inmate_number=f"S{number:05d}", surname="Scale", pin="1234"
            ).pk
            for number in range(max(clients, prefill_inmates))
        ]
    for inmate_id in inmates:
        reserved = ledger_services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate_id,
            amount_fen=10**8,
            idempotency_key=f"scale-seed-{inmate_id}",
        )
        ledger_services.credit_deposit(deposit_id=reserved.pk)
    category, _ = Category.objects.get_or_create(
        code="scale", defaults={"name_zh": "测试", "name_en": "Scale"}
    )
    product = Product.objects.create(
        sku=f"SCALE-{run_id}", name_zh="测试商品", name_en="Scale product",
        category=category, price_fen=100, max_per_order=10,
    )  # fmt: skip
    FacilityProduct.objects.create(facility=facility, product=product, stock=2_000_000_000)
    for n in range(clients):
        facility_services.register_kiosk_device(facility=facility, name=f"scale {n}")
    devices = list(
        KioskDevice.objects.filter(facility=facility).order_by("pk").values_list("pk", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "facility_id": facility.pk,
        "inmates": inmates[:clients],
        "devices": devices,
        "product_id": product.pk,
    }


def halves(cpus: set[int]) -> tuple[frozenset[int], frozenset[int]]:
    """This process's CPUs cut in two halves (the primary's, the standby's)."""
    if len(cpus) < 2:
        sys.exit("--split-cpus needs at least 2 CPUs")
    ordered = sorted(cpus)
    middle = len(ordered) // 2
    return frozenset(ordered[:middle]), frozenset(ordered[middle:])


def cluster_processes(data_dir: Path) -> list[int]:
    """The postmaster of the cluster in ``data_dir`` and the processes it has forked so far
    (those it forks later inherit the postmaster's CPU affinity)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    found = [postmaster]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
            found.append(int(entry.name))
    return found


def bind(pids: list[int], cpus: frozenset[int]) -> None:
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except ProcessLookupError:  # a backend that ended meanwhile
            continue


def hot_client(urls, shop, number, key_prefix, seconds, start, results, split) -> None:
    """A kiosk order and a deposit, again and again, for ``seconds``: (orders, deposits)."""
    if split:
        os.sched_setaffinity(0, split[0])
    _environment(urls[0], None)
    from catalog import services as catalog_services
    from ledger import services as ledger_services

    inmate_id, device_id = shop["inmates"][number], shop["devices"][number]

    def order(key):
        catalog_services.place_order(
            inmate_id=inmate_id,
            device_id=device_id,
            items=[{"product_id": shop["product_id"], "quantity": 1}],
            idempotency_key=key,
        )

    def deposit(key):
        reserved = ledger_services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate_id,
            amount_fen=DEPOSIT_FEN,
            idempotency_key=key,
        )
        ledger_services.credit_deposit(deposit_id=reserved.pk)

    order(f"{key_prefix}-{number}-warm")
    deposit(f"{key_prefix}-{number}-warm")
    start.wait()
    end_at = time.monotonic() + seconds
    orders = deposits = 0
    while time.monotonic() < end_at:
        order(f"{key_prefix}-{number}-{orders}")
        orders += 1
        if time.monotonic() >= end_at:
            break
        deposit(f"{key_prefix}-{number}-{deposits}")
        deposits += 1
    results.put(("hot", orders, deposits))


def reporter(urls, shop, way, seconds, start, results, split) -> None:
    """The reports in a loop for ``seconds``: (loops, loops read on the replica)."""
    if split:
        os.sched_setaffinity(0, split[1])
    _environment(urls[0], urls[1] if way == WAYS[2] else None)
    from django.utils import timezone

    from commissary import replica
    from facilities.models import Facility
    from reports import selectors

    facility = Facility.objects.get(pk=shop["facility_id"])
    today = facility.local_date(timezone.now())
    month_ago = today - dt.timedelta(days=30)
    start.wait()
    end_at = time.monotonic() + seconds
    loops = on_replica = 0
    while time.monotonic() < end_at:
        with replica.reads_that_can_wait() as reading:
            selectors.deposits_per_day(facility=facility, days=30)
            selectors.sales_per_day(facility=facility, days=30)
            selectors.cap_use(facility=facility)
            selectors.money_in_trust_fen(facility=facility)
            selectors.trust_balances_at(facility=facility, day=today)
            selectors.deposits_by_day_and_provider(facility=facility, first=month_ago, last=today)
            list(selectors.sales_by_product(facility=facility, first=month_ago, last=today))
            selectors.monthly_cap_report(facility=facility, month=today.replace(day=1))
        loops += 1
        on_replica += reading.on_replica
    results.put(("reports", loops, on_replica))


def measure(urls, shop, way: str, seconds: float, key_prefix: str, split=NO_SPLIT) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    reporters = 0 if way == WAYS[0] else REPORTERS
    start = context.Barrier(CLIENTS + reporters, timeout=300)
    processes = [
        context.Process(
            target=hot_client, args=(urls, shop, n, key_prefix, seconds, start, results, split)
        )
        for n in range(CLIENTS)
    ] + [
        context.Process(target=reporter, args=(urls, shop, way, seconds, start, results, split))
        for _ in range(reporters)
    ]
    for process in processes:
        process.start()
    totals = {"orders": 0, "deposits": 0, "report_loops": 0, "on_replica": 0}
    for _ in processes:
        kind, first, second = results.get(timeout=seconds + 600)
        if kind == "hot":
            totals["orders"] += first
            totals["deposits"] += second
        else:
            totals["report_loops"] += first
            totals["on_replica"] += second
    for process in processes:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"a client process failed ({process.exitcode})")
    return totals


def run(args, urls: tuple[str, str], split=NO_SPLIT) -> None:
    """Migrate the primary's database, set up the shop, prefill, and measure the three ways."""
    migrated = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": urls[0], "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    if migrated.returncode:
        sys.exit(migrated.stderr)
    _environment(urls[0], None)
    print(f"setting up {args.inmates} inmates ...", flush=True)
    shop = set_up(CLIENTS, args.inmates)
    print(f"prefill: {args.prefill_seconds:.0f} s of orders and deposits ...", flush=True)
    measure(urls, shop, WAYS[0], args.prefill_seconds, "prefill", split)
    wait_for_replay(*urls)
    slice_seconds = args.seconds / args.rounds
    totals = {way: {"orders": 0, "deposits": 0, "report_loops": 0, "on_replica": 0} for way in WAYS}
    for round_number in range(args.rounds):
        order = WAYS if round_number % 2 == 0 else tuple(reversed(WAYS))
        for way in order:
            key_prefix = f"r{round_number}-{WAYS.index(way)}"
            got = measure(urls, shop, way, slice_seconds, key_prefix, split)
            for name, value in got.items():
                totals[way][name] += value
    if totals[WAYS[2]]["on_replica"] != totals[WAYS[2]]["report_loops"]:
        sys.exit("some report loops of the replica side read on the primary (replica lag?)")
    print(f"\n{CLIENTS} clients, {args.seconds:.0f} s each way in {args.rounds} slices")
    if split:
        print(
            f"CPUs {sorted(split[0])}: the primary and the hot path; "
            f"CPUs {sorted(split[1])}: the standby and the report loops"
        )
    rates = {}
    for way in WAYS:
        figures = totals[way]
        rates[way] = (figures["orders"] / args.seconds, figures["deposits"] / args.seconds)
        print(
            f"{way:<24} orders {rates[way][0]:7.1f}/s  deposits {rates[way][1]:7.1f}/s"
            f"  report loops {figures['report_loops'] / args.seconds:5.2f}/s"
        )
    base_orders, base_deposits = rates[WAYS[0]]
    for way in WAYS[1:]:
        orders, deposits = rates[way]
        print(
            f"{way + ' / no reports':<40} orders {orders / base_orders:.2f}"
            f"  deposits {deposits / base_deposits:.2f}"
        )


def checked(primary_url: str, replica_url: str) -> tuple[str, str]:
    """The two URLs once ``check_standby`` accepts them; the benchmark stops otherwise."""
    try:
        check_standby(primary_url, replica_url)
    except NotAStandby as refusal:
        sys.exit(f"refused: {refusal}")
    return primary_url, replica_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="each way, in all (20)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating slices (2)")
    parser.add_argument(
        "--prefill-seconds",
        type=float,
        default=20.0,
        help="hot-path work before measuring, to give the reports a journal to read (20)",
    )
    parser.add_argument(
        "--inmates", type=int, default=2000, help="inmates at the facility, with money (2000)"
    )
    parser.add_argument(
        "--primary-url",
        help="an existing primary's database for the benchmark alone (migrated, written to); "
        "with --replica-url",
    )
    parser.add_argument(
        "--replica-url",
        help="the same database on an existing streaming standby of --primary-url (on another "
        "machine), checked to be one, instead of a standby started here",
    )
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="two machines modelled on one: the primary and the hot path on one half of the "
        "CPUs, the standby and the report loops on the other",
    )
    args = parser.parse_args()
    if args.split_cpus and args.replica_url:
        parser.error("--split-cpus binds the clusters it starts; not with --replica-url")
    if bool(args.primary_url) != bool(args.replica_url):
        parser.error("--replica-url and --primary-url go together (the standby's own primary)")
    if args.replica_url:
        run(args, checked(args.primary_url, args.replica_url))
        return
    bin_dir = clusters.binaries()
    if bin_dir is None:
        sys.exit("PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup) are not installed")
    with (
        clusters.scratch_dir("commissary-scale-") as root,
        clusters.pair(bin_dir, root, fsync="off", full_page_writes="off") as (primary, standby),
    ):
        primary.query(f"CREATE DATABASE {DATABASE}")
        clusters.replay_caught_up(primary, standby)  # the new database is on the standby too
        split = halves(os.sched_getaffinity(0)) if args.split_cpus else NO_SPLIT
        if split:
            bind(cluster_processes(primary.data), split[0])
            bind(cluster_processes(standby.data), split[1])
        run(args, checked(primary.url(DATABASE), standby.url(DATABASE)), split)


if __name__ == "__main__":
    main()
