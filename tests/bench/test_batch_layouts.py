"""bench/batch.py --compare-unpartitioned at a tiny size: the comparison runs on both layouts
of the journal and leaves it partitioned, and an unpartitioned copy that differs from the
journal in more than partitioning stops it before anything is measured."""

import argparse
import importlib

import pytest
from django.db import connection


@pytest.fixture(scope="module")
def batch():
    return importlib.import_module("bench.batch")


def database_url() -> str:
    """The test database's URL, for the benchmark's worker process."""
    database = connection.settings_dict
    password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
    return (
        f"postgres://{database['USER']}{password}@{database['HOST'] or '127.0.0.1'}"
        f":{database['PORT'] or 5432}/{database['NAME']}"
    )


@pytest.fixture
def loaded(batch, transactional_db):
    """Six inmates and 80 entries loaded as the benchmark loads them; a raw connection."""
    from ledger import partitions

    months = set(partitions.attached_months())
    params = batch.raw_connection_params()
    facility_id, data_month = batch.load_data(params, inmates=6, transactions=40, checked=False)
    raw = batch.open_raw(params)
    yield raw, facility_id, data_month
    batch.restore_partitioned(raw)
    # The months the load attached go, so that later tests find the months a fresh test
    # database has.
    for month in set(partitions.attached_months()) - months:
        raw.execute(f"DROP TABLE {partitions.partition_name(month)}")
    raw.close()


def options(**extra):
    return argparse.Namespace(rounds=1, only=None, chunk_size=4, inmates=6, **extra)


def test_both_layouts_are_measured_and_the_journal_is_partitioned_again(batch, loaded, capsys):
    raw, facility_id, data_month = loaded
    work = batch.Worker(database_url())
    try:
        best = batch.measure_layouts(
            options(), work, raw, facility_id=facility_id, data_month=data_month, transactions=40
        )
    finally:
        peak_mb = work.stop()
    batch.report_layouts(options(), best, peak_mb)
    output = capsys.readouterr().out
    figures = {"rollover", "raw rollover", "reconciliation", "raw reconciliation"}
    assert {layout: set(seconds) for layout, seconds in best.items()} == {
        "partitioned": figures,
        "unpartitioned": figures,
    }
    assert "the layouts differ in partitioning only" in output
    assert "unpartitioned, round 1:" in output
    assert "0 findings" in output
    for layout in ("partitioned", "unpartitioned"):
        for work_name in ("rollover", "reconciliation"):
            assert f"  {layout:<15} {work_name:<16}" in output
            assert f"{work_name}/raw, {layout}: " in output
    assert batch.current_layout(raw) == "partitioned"
    assert not batch.relation_exists(raw, batch.PARKED["unpartitioned"])
    assert not batch.relation_exists(raw, batch.PARKED["partitioned"])


def first_copy_index(raw, batch) -> str:
    return raw.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary ORDER BY c.relname LIMIT 1",
        [batch.PARKED["unpartitioned"]],
    ).fetchone()[0]


def first_copy_trigger(raw, batch) -> str:
    return raw.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
        "ORDER BY tgname LIMIT 1",
        [batch.PARKED["unpartitioned"]],
    ).fetchone()[0]


CHANGES = {
    "an index missing": (
        lambda raw, batch: raw.execute(f'DROP INDEX "{first_copy_index(raw, batch)}"'),
        r"indexes:\n    only partitioned: \('CREATE INDEX ON ",
    ),
    "an index more": (
        lambda raw, batch: raw.execute(
            f"CREATE INDEX ON {batch.PARKED['unpartitioned']} (amount_fen)"
        ),
        r"indexes:\n    only unpartitioned: \('CREATE INDEX ON .*\(amount_fen\)",
    ),
    "a trigger missing": (
        lambda raw, batch: raw.execute(
            f"DROP TRIGGER {first_copy_trigger(raw, batch)} ON {batch.PARKED['unpartitioned']}"
        ),
        r"triggers:\n    only partitioned: \('pgtrigger_entry_",
    ),
    "a column default": (
        lambda raw, batch: raw.execute(
            f"ALTER TABLE {batch.PARKED['unpartitioned']} ALTER amount_fen SET DEFAULT 0"
        ),
        r"columns:\n    only partitioned: \('amount_fen'",
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_copy_that_differs_in_more_than_partitioning_stops_the_comparison(
    batch, loaded, monkeypatch, change
):
    raw, facility_id, data_month = loaded
    make_change, message = CHANGES[change]
    batch.build_unpartitioned_copy(raw)
    batch.check_layouts(raw)  # as built, the copy differs in partitioning only

    build = batch.build_unpartitioned_copy

    def build_and_change(raw):
        build(raw)
        make_change(raw, batch)

    monkeypatch.setattr(batch, "build_unpartitioned_copy", build_and_change)
    # No worker: the comparison stops before it measures anything.
    with pytest.raises(batch.LayoutDrift, match=message):
        batch.measure_layouts(
            options(), None, raw, facility_id=facility_id, data_month=data_month, transactions=40
        )
    assert batch.current_layout(raw) == "partitioned"
    assert not batch.relation_exists(raw, batch.PARKED["unpartitioned"])
