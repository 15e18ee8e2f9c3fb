"""Kiosk orders over HTTP under gunicorn, beside the raw-SQL purchase of bench/ledger.py.

    DATABASE_URL=postgres://user@host:5432/commissary_bench python bench/kiosk.py --fresh

Starts gunicorn on a loopback port with the project's WSGI app, signs one inmate in per client
(each client is a kiosk of its own, with its own inmate), and has 8, then 32 clients place
one-product orders (``POST /api/kiosk/v1/orders`` with a fresh ``Idempotency-Key``) for the
given seconds: orders per second and the p50/p99 latency of an order. In the same run it
measures the raw baseline of bench/ledger.py — the purchase's statements through a bare
psycopg connection, no HTTP, no Django — with 8 clients on 8 inmates, after checking that the
baseline still sends what the ledger's purchase sends (it stops if not). The 8-client kiosk
and raw measurements are cut into ``--rounds`` slices that alternate, so both see the same
background load.

All of it runs twice, each pass with a new shop and a new gunicorn: the first on the database
as it is (with ``--fresh``, dropped and created empty first: a fresh install, cold), the second
on the same database, grown by the first (warm). The last line gives the kiosk order's rate
over the raw purchase's at 8 clients for both passes, and the first over the second.

With ``--pgbouncer`` a PgBouncer in session mode is started for the run (bench/pgbouncer.py,
Debian's ``pgbouncer``) and a second gunicorn connects through it (``DATABASE_BEHIND_POOLER``);
its 8 kiosk clients take their turn in the same slices as the direct ones and the raw
purchase, and the last lines give its rate over the direct kiosk's and over the raw one's.

With ``--cpu`` each 8-client line is followed by the CPU an operation took, by kind of
process (the web server's workers, the benchmark database's PostgreSQL backends and the
server's background processes, Redis, the pooler, the load generator's clients), read from
/proc from the moment the clients are signed in and warm until the last one ends
(bench/cpu.py): where the kiosk order's time goes beside the raw purchase's.

Every client is its own process (32 clients: 8 processes of 4 threads), so the load generator
is not held back by one GIL; it shares the machine with gunicorn and PostgreSQL, as a test rig
does. Requests go to 127.0.0.1 only. Use a database of the benchmark's own: the data stays
(``--fresh`` drops it).
"""

import argparse
import http.client
import importlib.util
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cpu import ProcessCPU, per_operation_lines  # noqa: E402 - after the path set-up

PROCESSES = 8
LABELS = ("kiosk, 8 clients", "kiosk, 32 clients", "raw purchase, 8 clients")
POOLED = "kiosk via pgbouncer, 8 clients"
PRICE_FEN = 100
SEED_FEN = 10**9
# 32 sign-ins at once each hash a PIN at full strength: on a busy machine they queue a while.
REQUEST_TIMEOUT_SECONDS = 120
HEARTBEAT_DIR = Path("/dev/shm")  # noqa: S108 - gunicorn's advice for its heartbeat files


def ledger_bench():
    """bench/ledger.py as a module (it is a script, named like the ledger app)."""
    spec = importlib.util.spec_from_file_location("ledger_bench", ROOT / "bench" / "ledger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- set-up -------------------------------------------------------------------------------


def create_shop(run_id: str, inmates_wanted: int):
    """A facility whose caps never run out, its inmates with money, one product with stock for
    any run, and one kiosk per inmate. Returns (inmate numbers and ids, kiosk keys, product)."""
    from django.contrib.auth.hashers import make_password

    from catalog.models import Category, FacilityProduct, Product
    from facilities import services as facility_services
    from facilities.models import Inmate

    bench = ledger_bench()
    facility, inmate_ids = bench.create_bench_data(run_id, inmates_wanted)
    bench.seed(inmate_ids, run_id)
    category, _ = Category.objects.get_or_create(
        code="bench", defaults={"name_zh": "测试", "name_en": "Bench"}
    )
    product = Product.objects.create(
        sku=f"BENCH-{run_id}",
        name_zh="测试商品",
        name_en="Bench product",
        category=category,
        price_fen=PRICE_FEN,
        max_per_order=10,
    )
    FacilityProduct.objects.create(facility=facility, product=product, stock=2_000_000_000)
    # The server checks PINs with the production hasher: one hash, shared by the bench inmates.
    Inmate.objects.filter(pk__in=inmate_ids).update(pin_hash=make_password("1234"))
    keys = [
        facility_services.register_kiosk_device(facility=facility, name=f"bench {n}")[1]
        for n in range(inmates_wanted)
    ]
    numbers = [f"B{number:05d}" for number in range(inmates_wanted)]
    return list(zip(numbers, inmate_ids, strict=True)), keys, product.pk


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(
    database_url: str, port: int, workers: int, *, behind_pooler: bool = False
) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_BEHIND_POOLER": "true" if behind_pooler else "false",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "KIOSK_THROTTLE_RATE": "10000000/min",
        "LOG_LEVEL": "WARNING",
        "PYTHONWARNINGS": "ignore::UserWarning",  # no collected static files: not served here
        "DJANGO_SETTINGS_MODULE": "commissary.settings",
    }
    server = subprocess.Popen(  # noqa: S603 - our own server, on loopback
        [
            gunicorn,
            "commissary.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            # Gunicorn's advice: the workers' heartbeat file in memory, not on a disk-backed
            # /tmp, where its per-request timestamp update can block.
            *(["--worker-tmp-dir", str(HEARTBEAT_DIR)] if HEARTBEAT_DIR.is_dir() else []),
        ],
        cwd=ROOT,
        env=environment,
    )
    deadline = time.time() + REQUEST_TIMEOUT_SECONDS  # a busy machine starts workers slowly
    while time.time() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


# --- clients ------------------------------------------------------------------------------


def _request(port: int, method: str, path: str, body=None, headers=None):
    # gunicorn's sync workers close every connection: one connection a request, as kiosks do
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_SECONDS)
    payload = json.dumps(body).encode() if body is not None else None
    connection.request(
        method, path, body=payload, headers={"Content-Type": "application/json", **headers}
    )
    answer = connection.getresponse()
    content = answer.read()
    connection.close()
    return answer.status, content


def kiosk_client(port, key, inmate_number, product_id, key_prefix, seconds, start, out):
    """Sign in, then order until the time is up; append (orders, latencies) to ``out``."""
    auth = {"Authorization": f"Kiosk {key}"}
    status, content = _request(
        port,
        "POST",
        "/api/kiosk/v1/sessions",
        {"inmate_number": inmate_number, "pin": "1234"},
        auth,
    )
    if status != 201:
        raise RuntimeError(f"sign-in failed: {status} {content[:200]!r}")
    headers = {**auth, "X-Inmate-Session": json.loads(content)["session"]}
    body = {"items": [{"product_id": product_id, "quantity": 1}]}

    def order(number):
        began = time.perf_counter()
        status, content = _request(
            port,
            "POST",
            "/api/kiosk/v1/orders",
            body,
            {**headers, "Idempotency-Key": f"{key_prefix}-{number}"},
        )
        if status != 201:
            raise RuntimeError(f"order failed: {status} {content[:200]!r}")
        return time.perf_counter() - began

    order("warm")
    start.wait()  # every client is signed in and warm
    end_at = time.time() + seconds
    latencies = []
    while True:
        latencies.append(order(len(latencies)))
        if time.time() > end_at:
            latencies.pop()  # finished after the end: not counted
            break
    out.append(latencies)


def raw_client(database_url, inmate_id, key_prefix, seconds, start, out):
    bench = ledger_bench()
    bench.setup_django(database_url)
    raw = bench.open_raw_ledger(bench.raw_connection_params())
    try:

        def purchase(key):
            began = time.perf_counter()
            raw.post_purchase(
                inmate_id=inmate_id,
                amount_fen=PRICE_FEN,
                idempotency_key=key,
                idempotency_scope="kiosk:1",
            )
            return time.perf_counter() - began

        purchase(f"{key_prefix}-warm")
        start.wait()
        end_at = time.time() + seconds
        latencies = []
        while True:
            latencies.append(purchase(f"{key_prefix}-{len(latencies)}"))
            if time.time() > end_at:
                latencies.pop()
                break
        out.append(latencies)
    finally:
        raw.connection.close()


def client_process(jobs, start, results):
    """Runs its share of the clients as threads and reports every latency."""
    out: list[list[float]] = []
    threads = [threading.Thread(target=target, args=(*args, start, out)) for target, args in jobs]
    failure = None
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except Exception as error:  # reported to the parent
        failure = repr(error)
    if len(out) != len(threads) and failure is None:
        failure = "a client failed (see its traceback above)"
    results.put((failure, [latency for latencies in out for latency in latencies]))


def measure(jobs, seconds: float, cpu=None):
    """Every latency of the jobs' operations, run together for ``seconds``. With ``cpu`` (a
    ``bench.cpu.ProcessCPU``), the CPU the machine's processes used from the moment the clients
    start (signed in, connected and warm) until the last one ends."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # Released once every client has signed in and placed a warm-up order (a client that
    # fails before it breaks the barrier for the others, after a timeout); this process waits
    # there too when it measures the CPU.
    start = context.Barrier(len(jobs) + (1 if cpu else 0), timeout=300)
    shares = [jobs[n::PROCESSES] for n in range(PROCESSES) if jobs[n::PROCESSES]]
    processes = [
        context.Process(target=client_process, args=(share, start, results), daemon=True)
        for share in shares
    ]
    for process in processes:
        process.start()
    if cpu:
        start.wait()
        cpu.start()
    latencies = []
    try:
        for _ in processes:
            failure, share_latencies = results.get()
            if failure:
                raise RuntimeError(failure)
            latencies.extend(share_latencies)
    finally:
        if cpu:
            cpu.stop()
    for process in processes:
        process.join()
    return latencies


def figures(latencies: list[float], seconds: float) -> tuple[float, float, float]:
    """Operations per second, and the p50 and p99 latency in milliseconds."""
    if not latencies:
        raise RuntimeError("no client finished an operation in time")
    latencies = sorted(latencies)
    p50 = 1000 * latencies[len(latencies) // 2]
    p99 = 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / seconds, p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each measurement (10)")
    parser.add_argument(
        "--workers", type=int, default=2 * (os.cpu_count() or 1) + 1, help="gunicorn workers"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="slices the 8-client measurements are cut into, alternating kiosk and raw (4)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="drop and create the benchmark's database first, so the first pass is cold",
    )
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="also measure 8 kiosk clients through a PgBouncer in session mode started for "
        "the run (a second gunicorn), in the same alternating slices",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="also give the CPU an order (and a raw purchase) took at 8 clients, by kind of "
        "process: web server, PostgreSQL backends and background, Redis, pooler, load "
        "generator (Linux; bench/cpu.py)",
    )
    args = parser.parse_args()
    from bench.common import benchmark_database_url

    database_url = benchmark_database_url()

    bench = ledger_bench()
    bench.setup_django(database_url)
    from django.core.management import call_command

    from bench.common import recreate_database

    params = bench.raw_connection_params()
    if args.fresh:
        print(f"database {params['dbname']}: dropping, creating, migrating", flush=True)
        recreate_database(params)
    else:
        print(f"database {params['dbname']}: creating if missing, migrating", flush=True)
        bench.ensure_database(params)
    call_command("migrate", verbosity=0)
    print(
        f"kiosk orders over HTTP on {os.cpu_count()} CPUs, {bench.server_settings()}; "
        f"gunicorn with {args.workers} sync workers; {args.seconds:g} s a measurement "
        f"(at 8 clients in {args.rounds} slices alternating kiosk and raw)",
        flush=True,
    )
    if not os.environ.get("REDIS_URL"):
        # Without Redis the kiosk's throttle is the database cache's: a transaction of its own,
        # five more round trips an order, which a production site (with its broker) never sends.
        print(
            "note: no REDIS_URL, so the throttle runs in the database cache (five more round "
            "trips an order than with Redis, as production has): set REDIS_URL to compare",
            flush=True,
        )
    pooler = start_pooler(params, args.workers) if args.pgbouncer else None
    pooled_url = pooled_database_url(database_url, pooler) if pooler else None
    passes = {}
    try:
        for name in PASSES:
            print(f"-- {name} pass", flush=True)
            passes[name] = measure_pass(bench, database_url, args, pooled_url)
    finally:
        if pooler:
            pooler.stop()

    print()
    print(f"{'measurement':<40}{'per second':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for name, results in passes.items():
        for label, (rate, p50, p99) in results.items():
            print(f"{name + ', ' + label:<40}{rate:>12.1f}{p50:>10.1f}{p99:>10.1f}")
    cold, warm = (results[LABELS[0]][0] / results[LABELS[2]][0] for results in passes.values())
    print()
    state = "a fresh database" if args.fresh else "this database as it was"
    print(f"first pass on {state}; the second on the same database, a new shop and new workers")
    print(
        f"kiosk/raw at 8 clients: first {cold:.2f}, second {warm:.2f}; "
        f"first/second {cold / warm:.2f}"
    )
    if pooler:
        for name, results in passes.items():
            direct, pooled, raw = (results[label][0] for label in (LABELS[0], POOLED, LABELS[2]))
            print(
                f"{name} pass, 8 clients: through pgbouncer/direct {pooled / direct:.2f}, "
                f"through pgbouncer/raw {pooled / raw:.2f}"
            )


PASSES = ("first", "second")


def start_pooler(params: dict, workers: int):
    """A PgBouncer in session mode in front of the benchmark's server, with room for every
    gunicorn worker's connection (bench/pgbouncer.py)."""
    from bench.pgbouncer import Pooler

    pooler = Pooler(
        server_host=params.get("host", "127.0.0.1"),
        server_port=int(params.get("port", 5432)),
        user=params.get("user", "postgres"),
        password=params.get("password", ""),
        pool_mode="session",
        pool_size=2 * workers + 8,
    ).start()
    print(f"pgbouncer (session mode) on 127.0.0.1:{pooler.port}", flush=True)
    return pooler


def pooled_database_url(database_url: str, pooler) -> str:
    """DATABASE_URL with the pooler's loopback address in place of the server's."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(database_url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{pooler.port}" if credentials else f"127.0.0.1:{pooler.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def measure_pass(
    bench, database_url: str, args, pooled_url: str | None = None
) -> dict[str, tuple[float, float, float]]:
    """A new shop (facility, inmates, kiosks, product), a new gunicorn, then the 8-client
    kiosk and raw measurements in alternating slices and the 32-client one. With
    ``pooled_url``, a second gunicorn connects through the pooler, and 8 kiosk clients
    through it take their turn in the same slices."""
    from django.db import connection

    slice_s = args.seconds / args.rounds
    run_id = uuid.uuid4().hex[:8]
    wanted = 8 + 32 + 8 + 2  # kiosk clients at 8, at 32, raw clients, the statement check
    inmates, keys, product_id = create_shop(run_id, wanted)
    try:
        # The raw side is the ledger benchmark's purchase: it must still mirror the service.
        check_pair = [inmate_id for _, inmate_id in inmates[48:50]]
        check_inmates = {operation: check_pair for operation in bench.LEDGER_OPERATIONS}
        print(bench.check_statements(check_inmates, bench.raw_connection_params(), run_id))
    except bench.BaselineDrift as drift:
        sys.exit(f"{drift}\nfix RawLedger in bench/ledger.py before measuring")
    connection.close()

    port = free_port()
    server = start_gunicorn(database_url, port, args.workers)
    pooled_port = free_port() if pooled_url else None
    pooled_server = (
        start_gunicorn(pooled_url, pooled_port, args.workers, behind_pooler=True)
        if pooled_url
        else None
    )
    labels = (*LABELS, POOLED) if pooled_url else LABELS
    latencies: dict[str, list[float]] = {label: [] for label in labels}
    database = bench.raw_connection_params()["dbname"]
    cpu = {label: ProcessCPU(database) for label in labels} if args.cpu else {}

    def measured(label: str, jobs) -> list[float]:
        """The jobs' latencies; with ``--cpu``, the CPU they took by kind of process too."""
        return measure(jobs, slice_s, cpu.get(label))

    try:
        # 8 kiosk clients (direct and, if asked, through the pooler) and 8 raw clients take
        # turns in slices (which goes first rotates too), so all see the same background
        # load; then 32 kiosk clients, in one go.
        order = ["kiosk", "raw", "pooled"] if pooled_url else ["kiosk", "raw"]
        for round_number in range(args.rounds):
            shift = round_number % len(order)
            for side in order[shift:] + order[:shift]:
                prefix = f"bench-{run_id}-{side}-{round_number}"
                if side in ("kiosk", "pooled"):
                    side_port, label = {
                        "kiosk": (port, LABELS[0]),
                        "pooled": (pooled_port, POOLED),
                    }[side]
                    jobs = kiosk_jobs(side_port, keys, inmates, product_id, 0, 8, prefix, slice_s)
                    latencies[label] += measured(label, jobs)
                else:
                    jobs = [
                        (raw_client, (database_url, inmates[40 + n][1], f"{prefix}-{n}", slice_s))
                        for n in range(8)
                    ]
                    latencies[LABELS[2]] += measured(LABELS[2], jobs)
        for label in (LABELS[0], LABELS[2], *([POOLED] if pooled_url else [])):
            print_line(label, figures(latencies[label], args.seconds))
            if args.cpu:
                print(f"  CPU an operation, {label}:")
                print("\n".join(per_operation_lines(cpu[label].seconds, len(latencies[label]))))
        jobs = kiosk_jobs(
            port, keys, inmates, product_id, 8, 32, f"bench-{run_id}-k32", args.seconds
        )
        latencies[LABELS[1]] = measure(jobs, args.seconds)
        print_line(LABELS[1], figures(latencies[LABELS[1]], args.seconds))
    finally:
        for running in (server, pooled_server):
            if running is not None:
                running.send_signal(signal.SIGTERM)
                running.wait(timeout=30)
    return {label: figures(latencies[label], args.seconds) for label in labels}


def kiosk_jobs(port, keys, inmates, product_id, first, count, prefix, seconds):
    """``count`` kiosk clients, each with its own kiosk key and inmate from ``first`` on."""
    return [
        (
            kiosk_client,
            (port, keys[n], inmates[n][0], product_id, f"{prefix}-{n}", seconds),
        )
        for n in range(first, first + count)
    ]


def print_line(label, rate_and_latencies):
    rate, p50, p99 = rate_and_latencies
    print(f"{label}: {rate:.1f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
