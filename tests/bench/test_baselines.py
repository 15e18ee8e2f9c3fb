"""The benchmarks' raw baselines must send what the services send: a services/raw ratio
against a heavier (or lighter) baseline is a figure about nothing. These tests run the same
mirror check that bench/ledger.py and bench/kiosk.py run before they measure, so a change
to a service's statements that leaves the baseline behind fails here, not only at the next
benchmark run."""

import importlib.util
import uuid
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def ledger_bench():
    spec = importlib.util.spec_from_file_location("ledger_bench", ROOT / "bench" / "ledger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench_inmates(ledger_bench, transactional_db):
    # The raw side is a connection of its own: it sees only committed rows.
    run_id = uuid.uuid4().hex[:8]
    _, inmate_ids = ledger_bench.create_bench_data(run_id, 2)
    ruled_facility, ruled_ids = ledger_bench.create_bench_data(run_id, 2, suffix="r")
    ledger_bench.add_ten_rules(ruled_facility)
    ledger_bench.seed(inmate_ids, run_id)
    check_inmates = dict.fromkeys(ledger_bench.OPERATIONS, inmate_ids)
    check_inmates[ledger_bench.RULED] = ruled_ids
    return run_id, check_inmates


def test_raw_ledger_baseline_sends_the_services_statements(ledger_bench, bench_inmates):
    run_id, check_inmates = bench_inmates
    inmate_ids = check_inmates["deposits"]
    report = ledger_bench.check_statements(
        check_inmates, ledger_bench.raw_connection_params(), run_id
    )
    # One deposit is two transactions (reserve, credit) with the screening's rule look-up
    # between them; the ten rules add one statement, the aggregate counting the four window
    # rules (the near-cap rule's month comes with the look-up). A purchase is one.
    assert "deposits: services 11 statements in 2 transactions, raw 11 in 2" in report
    assert "deposits, 10 rules: services 12 statements in 2 transactions, raw 12 in 2" in report
    assert "purchases: services 2 statements in 1 transactions, raw 2 in 1" in report
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inmate_id, balance_fen FROM ledger_account "
            "WHERE inmate_id = ANY(%s) AND kind = 'spendable' ORDER BY inmate_id",
            [inmate_ids],
        )
        balances = dict(cursor.fetchall())
    # Both sides moved the same money: the seed, one deposit in, one purchase out.
    expected = ledger_bench.SEED_FEN + ledger_bench.DEPOSIT_FEN - ledger_bench.PURCHASE_FEN
    assert balances == dict.fromkeys(inmate_ids, expected)


def test_a_baseline_that_drifts_stops_the_benchmark(ledger_bench, bench_inmates, monkeypatch):
    run_id, check_inmates = bench_inmates
    original = ledger_bench.RawLedger._lock

    def lock_and_read_again(self, sql, key, provider=""):
        row = original(self, sql, key, provider)
        self._execute("SELECT balance_fen FROM ledger_account WHERE id = %s", [row[2]])
        self.cursor.fetchone()
        return row

    monkeypatch.setattr(ledger_bench.RawLedger, "_lock", lock_and_read_again)
    with pytest.raises(ledger_bench.BaselineDrift, match="statement 2 differs"):
        ledger_bench.check_statements(check_inmates, ledger_bench.raw_connection_params(), run_id)


def test_a_screening_baseline_that_drifts_stops_the_benchmark(
    ledger_bench, bench_inmates, monkeypatch
):
    run_id, check_inmates = bench_inmates
    # A raw window rule that counts every deposit, not only the paid ones.
    drifted = ledger_bench.SCREENING_SQL["deposits_from_depositor"].replace(
        '"ledger_deposit"."created_at" >= %s AND ', '"ledger_deposit"."created_at" >= %s OR '
    )
    monkeypatch.setitem(ledger_bench.SCREENING_SQL, "deposits_from_depositor", drifted)
    drift = r"deposits, 10 rules: statement \d+ differs"
    with pytest.raises(ledger_bench.BaselineDrift, match=drift):
        ledger_bench.check_statements(check_inmates, ledger_bench.raw_connection_params(), run_id)


def test_statement_shape_takes_out_literals_only(ledger_bench):
    shape = ledger_bench.statement_shape
    assert shape("UPDATE t SET a = a + 5 WHERE id = 17 AND s = 'it''s'") == shape(
        "UPDATE t SET a = a + -3\n WHERE id = 2 AND s = 'x'"
    )
    assert shape("SELECT 1 FROM ledger_entry2 WHERE x = '2026-01-01'::date") == (
        "SELECT ? FROM ledger_entry2 WHERE x = ?"
    )
    assert shape("UPDATE t SET a = 1") != shape("UPDATE u SET a = 1")
