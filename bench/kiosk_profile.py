"""One kiosk order's cost in process: its SQL statements, its CPU, and where the CPU goes.

    DATABASE_URL=postgres://user@host:5432/commissary_bench python bench/kiosk_profile.py

Sets up a shop as bench/kiosk.py does (one inmate, one kiosk, one product), signs the inmate
in, and places orders by calling the project's WSGI application directly (no HTTP server, no
network client): the statements of one order (``CaptureQueriesContext``; Django's connection
health check and the throttle's Redis commands are not among them), the wall time of an order and
its CPU time (the best of ``--slices`` averages over ``--orders``: other work on the machine
only adds to it), the CPU time of its PostgreSQL server process, the function calls an order
makes (a count that does not depend on the machine's load) and a ``cProfile`` of as many
orders by CPU time, cumulative.
Use a database of the benchmark's own: the data stays.
"""

import argparse
import cProfile
import importlib.util
import io
import json
import os
import pstats
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def kiosk_bench():
    """bench/kiosk.py as a module (it is a script, named like the kiosk app)."""
    spec = importlib.util.spec_from_file_location("kiosk_bench", ROOT / "bench" / "kiosk.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class WSGIClient:
    """Calls a WSGI application the way gunicorn would, one request at a time."""

    def __init__(self, application):
        self.application = application

    def post(self, path: str, body, headers: dict) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(payload)),
            "wsgi.input": io.BytesIO(payload),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        for name, value in headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])

        chunks = self.application(environ, start_response)
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return answer["status"], content


def backend_cpu_seconds(pid: int) -> float | None:
    """The CPU time (user and system) of a process on this machine, or None where it cannot
    be read (a server elsewhere, or no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def statement_times_reset(connection) -> None:
    from django.db import DatabaseError

    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            cursor.execute("SELECT pg_stat_statements_reset()")
    except DatabaseError as error:
        sys.exit(
            f"--statements needs pg_stat_statements in shared_preload_libraries and "
            f"pg_stat_statements.track_planning on: {error}"
        )


def print_statement_times(connection, *, calls: int) -> None:
    """Planning and execution time an order of each statement run at least once an order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT total_plan_time / calls, total_exec_time / calls, query "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) AND calls >= %s "
            "ORDER BY total_plan_time + total_exec_time DESC LIMIT 12",
            [calls],
        )
        rows = cursor.fetchall()
    print("\nPostgreSQL, per call: planning ms, execution ms, statement")
    for plan_ms, exec_ms, query in rows:
        print(f"    {plan_ms:6.3f} {exec_ms:6.3f}  {' '.join(query.split())[:90]}")


def measure_gunicorn(bench, database_url, key, inmate_number, product_id, run_id, args):
    """Orders over HTTP to one gunicorn worker, one at a time: the CPU time of an order in the
    worker, in the PostgreSQL server processes of the benchmark's database and in this client
    (the best of ``--slices`` averages over ``--orders``)."""
    import psycopg

    port = bench.free_port()
    server = bench.start_gunicorn(database_url, port, 1)
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        worker = int(children[0])
        auth = {"Authorization": f"Kiosk {key}"}
        status, content = bench._request(
            port,
            "POST",
            "/api/kiosk/v1/sessions",
            {"inmate_number": inmate_number, "pin": "1234"},
            auth,
        )
        if status != 201:
            sys.exit(f"sign-in failed: {status} {content[:200]!r}")
        headers = {**auth, "X-Inmate-Session": json.loads(content)["session"]}
        body = {"items": [{"product_id": product_id, "quantity": 1}]}
        placed = 0

        def order() -> None:
            nonlocal placed
            placed += 1
            status, content = bench._request(
                port,
                "POST",
                "/api/kiosk/v1/orders",
                body,
                {**headers, "Idempotency-Key": f"{run_id}-http-{placed}"},
            )
            if status != 201:
                raise RuntimeError(f"order failed: {status} {content[:200]!r}")

        for _ in range(20):  # warm, and the worker's connection open
            order()
        params = bench.ledger_bench().raw_connection_params()
        with psycopg.connect(**params, autocommit=True) as probe:
            backends = [
                pid
                for (pid,) in probe.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                )
            ]

        def server_seconds() -> float:
            return sum(backend_cpu_seconds(pid) or 0.0 for pid in backends)

        figures = []
        for _ in range(args.slices):
            began = (backend_cpu_seconds(worker), server_seconds(), time.process_time())
            for _ in range(args.orders):
                order()
            ended = (backend_cpu_seconds(worker), server_seconds(), time.process_time())
            figures.append([(b - a) / args.orders for a, b in zip(began, ended, strict=True)])
        best = min(figures, key=lambda figure: figure[0])
        print(
            f"one order over HTTP (the slice of {args.slices} x {args.orders} orders whose "
            f"worker CPU was least): worker {1000 * best[0]:.2f} ms CPU, PostgreSQL "
            f"{1000 * best[1]:.2f} ms, client {1000 * best[2]:.2f} ms"
        )
        print(
            "    worker CPU in each slice, ms: "
            + ", ".join(f"{1000 * figure[0]:.2f}" for figure in figures)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="orders per measurement (300)")
    parser.add_argument(
        "--slices",
        type=int,
        default=5,
        help="measurements of CPU time, the best one reported: other work on the machine only "
        "ever adds to it (5)",
    )
    parser.add_argument("--top", type=int, default=40, help="profile lines shown (40)")
    parser.add_argument(
        "--sort", default="cumulative", help="profile order: cumulative or tottime (cumulative)"
    )
    parser.add_argument(
        "--gunicorn",
        action="store_true",
        help="instead: one gunicorn worker (as bench/kiosk.py starts it) and one client placing "
        "orders over HTTP, one at a time; the CPU time an order of the worker, of its PostgreSQL "
        "server process and of the client",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="also PostgreSQL's planning and execution time of each statement of the measured "
        "orders (needs pg_stat_statements loaded, with pg_stat_statements.track_planning on)",
    )
    args = parser.parse_args()
    from bench.common import benchmark_database_url

    database_url = benchmark_database_url()
    os.environ.setdefault("KIOSK_THROTTLE_RATE", "10000000/min")
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")

    bench = kiosk_bench()
    ledger_bench = bench.ledger_bench()
    ledger_bench.setup_django(database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ledger_bench.ensure_database(ledger_bench.raw_connection_params())
    call_command("migrate", verbosity=0)
    run_id = uuid.uuid4().hex[:8]
    inmates, keys, product_id = bench.create_shop(run_id, 1)
    connection.close()

    if args.gunicorn:
        measure_gunicorn(bench, database_url, keys[0], inmates[0][0], product_id, run_id, args)
        return

    from commissary.wsgi import application

    client = WSGIClient(application)
    auth = {"Authorization": f"Kiosk {keys[0]}"}
    status, content = client.post(
        "/api/kiosk/v1/sessions", {"inmate_number": inmates[0][0], "pin": "1234"}, auth
    )
    if status != 201:
        sys.exit(f"sign-in failed: {status} {content[:200]!r}")
    headers = {**auth, "X-Inmate-Session": json.loads(content)["session"]}
    body = {"items": [{"product_id": product_id, "quantity": 1}]}
    placed = 0

    def order() -> None:
        nonlocal placed
        placed += 1
        status, content = client.post(
            "/api/kiosk/v1/orders", body, {**headers, "Idempotency-Key": f"{run_id}-{placed}"}
        )
        if status != 201:
            raise RuntimeError(f"order failed: {status} {content[:200]!r}")

    for _ in range(20):  # warm: URL configuration, translations, connections
        order()
    with CaptureQueriesContext(connection) as queries:
        order()
    print(f"{len(queries.captured_queries)} statements in one order:")
    for query in queries.captured_queries:
        print("   ", " ".join(query["sql"].split())[:110])

    if args.statements:
        statement_times_reset(connection)
    backend = connection.connection.info.backend_pid
    began_wall, began_backend = time.perf_counter(), backend_cpu_seconds(backend)
    slices = []
    for _ in range(args.slices):
        began_cpu = time.process_time()
        for _ in range(args.orders):
            order()
        slices.append((time.process_time() - began_cpu) / args.orders)
    wall = (time.perf_counter() - began_wall) / (args.orders * args.slices)
    best, median = 1000 * min(slices), 1000 * statistics.median(slices)
    print(
        f"\none order: {1000 * wall:.2f} ms wall, {best:.2f} ms CPU in this process "
        f"(best of {args.slices} x {args.orders} orders; median {median:.2f})"
    )
    if began_backend is not None:
        backend_cpu = (backend_cpu_seconds(backend) - began_backend) / (args.orders * args.slices)
        print(f"           {1000 * backend_cpu:.2f} ms CPU in its PostgreSQL server process")
    if args.statements:
        print_statement_times(connection, calls=args.orders)

    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for _ in range(args.orders):
        order()
    profile.disable()
    stats = pstats.Stats(profile)
    calls = sum(entry[1] for entry in stats.stats.values()) / args.orders
    print(f"\n{calls:.0f} Python and built-in function calls an order (the profile's count)")
    print(f"CPU profile of {args.orders} orders by {args.sort} time (profiling adds its own):")
    stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
