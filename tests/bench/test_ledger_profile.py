"""bench/ledger_profile.py measures the benchmark's own deposit each way: every measured
deposit is a real one (reserved, screened, credited), and each round gives a figure."""

import importlib.util
import uuid
from pathlib import Path

import pytest

from ledger.models import Deposit

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def ledger_profile():
    spec = importlib.util.spec_from_file_location(
        "ledger_profile", ROOT / "bench" / "ledger_profile.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_round_measures_credited_deposits_each_way(ledger_profile, transactional_db):
    bench = ledger_profile.ledger_bench()
    run_id = uuid.uuid4().hex[:8]
    _, inmates = bench.create_bench_data(run_id, 2)
    raw = bench.open_raw_ledger(bench.raw_connection_params())
    try:
        cpu = ledger_profile.measure(
            bench, raw, inmates, run_id=run_id, rounds=2, deposits=3, warm_up=1
        )
    finally:
        raw.connection.close()
    assert {side: len(rounds) for side, rounds in cpu.items()} == {"services": 2, "raw": 2}
    assert all(ms > 0 for rounds in cpu.values() for ms in rounds)
    # One warm-up and two rounds of three, each way: all credited, none left reserved.
    deposits = Deposit.objects.filter(inmate_id__in=inmates)
    assert deposits.filter(status=Deposit.Status.CREDITED).count() == 2 * (1 + 2 * 3)
    assert deposits.count() == 2 * (1 + 2 * 3)
