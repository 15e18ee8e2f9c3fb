"""One deposit's client CPU in process: the services against the raw mirror, and where it goes.

    DATABASE_URL=postgres://user@host:5432/commissary_bench python bench/ledger_profile.py

Sets up a facility with no monitoring rule and a few inmates as ``bench/ledger.py`` does
(``create_bench_data``; with ``--rules``, that benchmark's ten active rules, ``add_ten_rules``,
none of which a deposit fires), then runs that benchmark's own deposit (``operation_for``:
reserve, monitoring's screening, credit) in this one process, through the services and through
the raw psycopg mirror, in alternating rounds of ``--deposits`` each, and prints the client CPU
a deposit took each way (``time.process_time``: on a loaded machine the wall clock says more
about the neighbours than about this code). With ``--profile``, a ``cProfile`` of as many
deposits through the services, timed by CPU, not by the clock. Use a database of the
benchmark's own: the data stays.
"""

import argparse
import cProfile
import importlib.util
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

INMATES = 4  # deposits go round them, as one client's would
WARM_UP = 50  # deposits each way before anything is measured


def ledger_bench():
    """bench/ledger.py as a module (it is a script, named like the ledger app)."""
    spec = importlib.util.spec_from_file_location("ledger_bench", ROOT / "bench" / "ledger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_ms_a_deposit(deposit, inmates, *, prefix: str, count: int) -> float:
    started = time.process_time()
    for number in range(count):
        deposit(inmates[number % len(inmates)], f"{prefix}-{number}")
    return 1000 * (time.process_time() - started) / count


def measure(
    bench, raw, inmates, *, run_id: str, rounds: int, deposits: int, warm_up: int = WARM_UP
) -> dict:
    """Client CPU milliseconds a deposit, per round, each way ({side: [ms, ...]}): the
    benchmark's deposit through the services and through ``raw`` (a ``RawLedger``), in
    alternating rounds (which side goes first alternates too), after a warm-up of each."""
    deposit = {side: bench.operation_for(side, "deposits", raw) for side in bench.SIDES}
    for side in bench.SIDES:  # connections open, caches filled, parties read
        cpu_ms_a_deposit(deposit[side], inmates, prefix=f"{run_id}-{side}-warm", count=warm_up)
    cpu = {side: [] for side in bench.SIDES}
    for round_number in range(rounds):
        for side in bench.SIDES if round_number % 2 == 0 else bench.SIDES[::-1]:
            cpu[side].append(
                cpu_ms_a_deposit(
                    deposit[side], inmates, prefix=f"{run_id}-{side}-{round_number}", count=deposits
                )
            )
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=300, help="deposits a round (300)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds each way (6)")
    parser.add_argument(
        "--rules", action="store_true", help="at a facility with ten active monitoring rules"
    )
    parser.add_argument("--profile", action="store_true", help="also profile the services")
    parser.add_argument("--top", type=int, default=40, help="profile lines shown (40)")
    parser.add_argument(
        "--sort", default="cumulative", help="profile order: cumulative or tottime (cumulative)"
    )
    args = parser.parse_args()
    from bench.common import benchmark_database_url

    database_url = benchmark_database_url()

    bench = ledger_bench()
    bench.setup_django(database_url)
    from django.core.management import call_command

    bench.ensure_database(bench.raw_connection_params())
    call_command("migrate", verbosity=0)
    run_id = uuid.uuid4().hex[:8]
    facility, inmates = bench.create_bench_data(run_id, INMATES)
    if args.rules:
        bench.add_ten_rules(facility)
    raw = bench.open_raw_ledger(bench.raw_connection_params())
    try:
        cpu = measure(
            bench, raw, inmates, run_id=run_id, rounds=args.rounds, deposits=args.deposits
        )
    finally:
        raw.connection.close()
    print(
        f"client CPU a deposit{' with 10 active rules' if args.rules else ''}, "
        f"{args.rounds} rounds of {args.deposits} each way "
        f"(load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}):"
    )
    for side in bench.SIDES:
        rounds = " ".join(f"{ms:.2f}" for ms in cpu[side])
        print(
            f"  {side:<9} median {statistics.median(cpu[side]):.2f} ms, "
            f"lowest {min(cpu[side]):.2f} ms  (rounds: {rounds})"
        )
    extra = statistics.median(cpu["services"]) - statistics.median(cpu["raw"])
    print(f"  extra through the services: {extra:.2f} ms a deposit (medians)")

    if args.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        cpu_ms_a_deposit(
            bench.operation_for("services", "deposits", None),
            inmates,
            prefix=f"{run_id}-profiled",
            count=args.deposits,
        )
        profile.disable()
        print(f"\nprofile of {args.deposits} deposits through the services (CPU seconds):")
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
