"""Partition pruning: the statements, reports and the archive's totals send queries that filter
on the entries' own date, so PostgreSQL reads only the months they are about. Each test runs
the code path, captures the statements it sent to ``ledger_entry`` and runs ``EXPLAIN`` on
exactly that SQL, listing the partitions the plan reads."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger import partitions, statements
from reports import selectors as reports
from tests.factories import InmateFactory

from .helpers import SHANGHAI, deposit

pytestmark = pytest.mark.django_db

MONTHS = [dt.date(2019, 1, 1), dt.date(2019, 2, 1), dt.date(2019, 3, 1)]
NOW = dt.datetime(2019, 3, 20, 12, tzinfo=SHANGHAI)


def _partitions_read(sql: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    read = set()

    def walk(node):
        if node.get("Relation Name", "").startswith("ledger_entry"):
            read.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return read


def _journal_queries(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "ledger_entry" in q["sql"]]


@pytest.fixture
def history():
    """An inmate admitted in 2018 with a deposit in each of three 2019 months, each month in
    its own partition."""
    for month in MONTHS:
        partitions.ensure_partitions(now=partitions.month_start(month), ahead=0)
    inmate = InmateFactory(now=dt.datetime(2018, 12, 1, tzinfo=SHANGHAI))
    for month in MONTHS:
        deposit(inmate, 1_000, now=partitions.month_start(month) + dt.timedelta(days=9))
    return inmate


def name(month: dt.date) -> str:
    return partitions.partition_name(month)


def test_a_months_statements_read_its_partition_for_the_lines_and_earlier_ones_for_the_opening(
    history,
):
    with CaptureQueriesContext(connection) as captured:
        statements.generate_statements(
            facility_id=history.facility_id, month=MONTHS[1], now=NOW, trigger="test"
        )
    opening, lines = _journal_queries(captured)
    assert _partitions_read(lines) == {name(MONTHS[1])}
    read = _partitions_read(opening)
    # Everything before February (the default partition can hold any month), nothing after.
    assert name(MONTHS[0]) in read
    assert not read & {
        name(MONTHS[1]),
        name(MONTHS[2]),
        name(partitions.month_of(NOW.now(SHANGHAI))),
    }


def test_reports_read_only_the_months_of_their_range(history):
    facility = history.facility
    with CaptureQueriesContext(connection) as captured:
        list(
            reports.fees_collected(
                facility=facility, first=dt.date(2019, 2, 3), last=dt.date(2019, 2, 20)
            )
        )
    (fees,) = _journal_queries(captured)
    assert _partitions_read(fees) == {name(MONTHS[1])}

    with CaptureQueriesContext(connection) as captured:
        reports.sales_per_day(facility=facility, days=7, today=dt.date(2019, 3, 20))
    (sales,) = _journal_queries(captured)
    assert _partitions_read(sales) == {name(MONTHS[2])}

    with CaptureQueriesContext(connection) as captured:
        balances = reports.trust_balances_at(facility=facility, day=dt.date(2019, 1, 31))
    (trust,) = _journal_queries(captured)
    assert balances == [(history.inmate_number, history.surname, 1_000, 0)]
    read = _partitions_read(trust)
    assert name(MONTHS[0]) in read
    assert not read & {name(MONTHS[1]), name(MONTHS[2])}
