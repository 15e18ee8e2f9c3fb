"""bench/batch.py --only detach: the phases read from a detach's statements, the postings'
windows, and at a tiny size the whole measurement (the month detached and put back each time,
the raw side's statements checked against the services'), which stops when the raw side no
longer sends what the services send."""

import argparse
import importlib

import pytest

from tests.bench.test_batch_layouts import database_url


@pytest.fixture(scope="module")
def batch():
    return importlib.import_module("bench.batch")


def statement(sql, at, cpu=0.0):
    """A clock's statement that starts at ``at`` and takes a tenth of a second."""
    return (sql, (at, cpu, cpu), (at + 0.1, cpu + 0.01, cpu + 0.05))


def services_statements(batch, *, lock_attempts=1):
    """What the services send, in order, as (sql, began, ended), one a second."""
    sqls = [
        "SELECT ... FROM ledger_partitions",
        "SELECT COUNT(*) FROM ledger_entry_default WHERE created_at < %s",  # the plan's
        batch.DETACH_MONTH_FIGURES.format(table="ledger_entry_p202610"),
        batch.DETACH_ACCOUNT_TOTALS.format(table="ledger_entry_p202610"),
        batch.DETACH_DAY_TOTALS.format(table="ledger_entry_p202610"),
        batch.DETACH_CHECKS_NOW,
        batch.DETACH_ARCHIVED_MONTH,
        batch.DETACH_STORE_ACCOUNT_TOTALS,
        batch.DETACH_STORE_DAY_TOTALS,
    ]
    for _ in range(lock_attempts - 1):
        sqls += ['SAVEPOINT "s1_x1"', batch.DETACH_LOCKS[0], 'ROLLBACK TO SAVEPOINT "s1_x1"']
    sqls += ['SAVEPOINT "s1_x2"', *batch.DETACH_LOCKS, 'RELEASE SAVEPOINT "s1_x2"']
    sqls += [
        batch.DETACH_NEWEST_ID.format(table="ledger_entry_p202610"),
        batch.DETACH_PARTITION.format(table="ledger_entry_p202610"),
        batch.DETACH_DEFAULT_LEFT,
    ]
    return [statement(sql, float(number + 1)) for number, sql in enumerate(sqls)]


def test_the_phases_follow_the_statements_and_the_locked_part_starts_at_the_last_attempt(batch):
    statements = services_statements(batch, lock_attempts=3)
    last = statements[-1][2][0]
    phases = batch.phases_of(statements, (0.5, 0.0, 0.0), (last + 0.4, 1.0, 2.0))
    names = [phase["phase"] for phase in phases]
    assert names == [
        batch.PLAN_PHASE,
        *(name for name, _ in batch.DETACH_PHASES),
        batch.COMMIT_PHASE,
        "locked part (last lock attempt to return)",
    ]
    by_name = {phase["phase"]: phase for phase in phases}
    assert by_name[batch.PLAN_PHASE]["statements"] == 2  # the plan's own default check stays
    assert by_name[batch.PLAN_PHASE]["wall"] == pytest.approx(2.5)
    # Two failed attempts (three statements each) and the one that got the locks (six).
    assert by_name["lock accounts, transactions, journal"]["statements"] == 12
    assert by_name[batch.COMMIT_PHASE]["wall"] == pytest.approx(0.4)
    locked = phases[-1]
    assert locked["lock attempts"] == 3
    # From the third LOCK statement (the 17th sent, at 17 s: after the totals) to the return.
    assert locked["locked from"] == 17.0
    assert locked["wall"] == pytest.approx(last + 0.4 - 17.0)
    assert locked["statements"] == len(statements) - 16
    assert sum(p["wall"] for p in phases[:-1]) == pytest.approx(batch.detach_seconds(phases))
    assert batch.detach_seconds(phases) == pytest.approx(last + 0.4 - 0.5)


def test_a_phase_missing_from_the_statements_is_a_drift(batch):
    statements = [s for s in services_statements(batch) if "archived_day_totals" not in s[0]]
    with pytest.raises(batch.BaselineDrift, match="day totals: GROUP BY account, day"):
        batch.phases_of(statements, (0.5, 0, 0), (99.0, 0, 0))


def test_the_mirror_compares_from_the_month_figures_on_savepoint_names_aside(batch):
    services = [sql for sql, _, _ in services_statements(batch)]
    raw = [sql.replace('"s1_x2"', '"raw_lock"') for sql in services[2:]]
    assert batch.check_detach_mirror(services, raw) == (
        f"detach: services {len(raw)} statements after its plan, raw {len(raw)}"
    )
    heavier = list(raw)
    heavier[2] = raw[2].replace("GROUP BY e.account_id", "GROUP BY e.id")
    with pytest.raises(batch.BaselineDrift, match="statement 3:"):
        batch.check_detach_mirror(services, heavier)
    with pytest.raises(batch.BaselineDrift, match="only services sends: SELECT COUNT"):
        batch.check_detach_mirror(services, raw[:-1])


def test_postings_are_counted_in_each_window(batch):
    postings = [(t, t + 0.01) for t in (1.0, 2.0, 3.0)] + [(4.0, 6.5), (6.6, 6.61), (9.0, 9.01)]
    waits = batch.posting_waits(
        postings, before_from=1.5, detach_from=3.5, locked_from=5.0, detach_to=6.55
    )
    assert waits["before"]["count"] == 2
    assert waits["during the detach"] == {
        "count": 1,
        "median": pytest.approx(2.5),
        "p99": pytest.approx(2.5),
        "max": pytest.approx(2.5),
    }
    assert waits["during its locked part"]["count"] == 1
    assert batch.percentile(list(range(1, 201)), 0.99) == 198
    assert batch.percentile([3.0], 0.99) == 3.0


@pytest.fixture
def loaded(batch, transactional_db):
    """Six inmates and 80 entries over last month and the one before, as the benchmark loads
    them; a raw connection. The months the load attached go afterwards."""
    from ledger import partitions

    months = set(partitions.attached_months())
    params = batch.raw_connection_params()
    facility_id, data_month = batch.load_data(
        params, inmates=6, transactions=40, checked=False, months=2
    )
    raw = batch.open_raw(params)
    yield raw, facility_id, data_month
    batch.put_archived_months_back(raw)
    for month in set(partitions.attached_months()) - months:
        raw.execute(f"DROP TABLE {partitions.partition_name(month)}")
    raw.close()


def options():
    return argparse.Namespace(rounds=1, only="detach", inmates=6)


def test_the_detach_is_measured_both_ways_and_the_month_put_back(
    batch, loaded, monkeypatch, capsys
):
    from ledger import partitions

    raw, facility_id, data_month = loaded
    monkeypatch.setattr(batch, "QUIET_SECONDS", 0.2)
    first = batch.add_months(data_month, -1)
    assert partitions.attached_months()[0] == first
    journal = raw.execute("SELECT COUNT(*), SUM(id) FROM ledger_entry").fetchone()
    work = batch.Worker(database_url())
    try:
        result = batch.measure_detach(
            options(), work, raw, database_url=database_url(), facility_id=facility_id
        )
    finally:
        peak_mb = work.stop()
    assert result["plan"].month == first
    assert result["mirror"].startswith("detach: services 16 statements after its plan, raw 16")
    sizes = result["sizes"]
    assert sizes["entries"] == 40  # half the transactions fall in the first month
    assert sizes["account totals"] == 6 + 2  # the inmates' spendable, clearing, adjustments
    assert 0 < sizes["day totals"] <= sizes["entries on day-total accounts"] == 20
    assert {side: len(runs) for side, runs in result["runs"].items()} == {
        "services": 1,
        "raw": 1,
    }
    for side in ("services", "raw"):
        assert result["posting"][side]["waits"]["before"]["count"] > 0
    batch.report_detach(options(), result, peak_mb)
    output = capsys.readouterr().out
    assert "  store day totals  " in output
    assert "  day totals: " in output
    assert "detach/raw, after the plan: " in output
    assert "; backend CPU " in output
    assert "during its locked part" in output
    # Each detach was undone: the month is attached again with every entry, nothing archived
    # (the postings added their own entries, this month).
    assert partitions.attached_months()[0] == first
    assert raw.execute("SELECT COUNT(*) FROM ledger_archivedjournalmonth").fetchone() == (0,)
    assert raw.execute(
        f"SELECT COUNT(*) FROM {partitions.partition_name(first)}"  # noqa: S608 - a name built from a date
    ).fetchone() == (40,)
    assert raw.execute("SELECT COUNT(*) FROM ledger_entry").fetchone()[0] >= journal[0]
    # --reuse still finds the database built over two months, the postings' purchases aside.
    params = batch.raw_connection_params()
    assert raw.execute(
        "SELECT COUNT(*) FROM ledger_transaction WHERE kind = 'purchase'"
    ).fetchone()[0]
    assert batch.existing_data(params, 6, 40, 2) == (facility_id, data_month)
    assert batch.existing_data(params, 6, 40, 1) is None


def test_a_raw_side_that_no_longer_mirrors_the_detach_stops_the_run(batch, loaded, monkeypatch):
    from ledger import partitions

    raw, facility_id, _ = loaded
    # A heavier baseline: the day totals sorted as well.
    monkeypatch.setattr(
        batch,
        "DETACH_DAY_TOTALS",
        batch.DETACH_DAY_TOTALS.replace(
            "GROUP BY e.account_id, local.day, f.timezone",
            "GROUP BY e.account_id, local.day, f.timezone ORDER BY 1, 2",
        ),
    )
    work = batch.Worker(database_url())
    try:
        with pytest.raises(batch.BaselineDrift, match=r"(?s)statement 3:.*no longer mirrors"):
            batch.measure_detach(
                options(), work, raw, database_url=database_url(), facility_id=facility_id
            )
    finally:
        work.stop()
    assert raw.execute("SELECT COUNT(*) FROM ledger_archivedjournalmonth").fetchone() == (0,)
    assert partitions.attached_months()[0] == batch.add_months(loaded[2], -1)
