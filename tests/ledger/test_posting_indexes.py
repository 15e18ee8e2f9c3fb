"""The indexes every posting pays for. The transaction table's (ledger.0016): the columns only
refunds and staff transactions fill are indexed only where they name one (so a deposit or a
purchase writes nothing there), the rows that name one are found through them, and the lookups
by those columns and by the inmate still use an index (the foreign-key checks included). The
deposit table's (ledger.0017): no index on the inmate alone, whose look-ups read the one that
leads with it. PostgreSQL: definitions from its catalog, plans from EXPLAIN."""

import pytest
from django.db import connection

from ledger import services
from tests.factories import InmateFactory

from .helpers import deposit, key, post_purchase, staff_at

pytestmark = pytest.mark.django_db


def index_used(sql: str, params: list) -> str:
    """The index the plan of ``sql`` reads, with sequential scans priced out (a test table is
    small enough that PostgreSQL would read it whole)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0][0]["Plan"]
    found = []

    def walk(node):
        if "Index Name" in node:
            found.append(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    assert len(found) == 1, plan
    return found[0]


def test_the_indexes_on_rarely_filled_columns_hold_only_the_rows_that_fill_them():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'ledger_transaction'"
        )
        definitions = dict(cursor.fetchall())
    for column in ("refund_of_id", "created_by_id", "approved_by_id"):
        on_column = [d for d in definitions.values() if f"({column})" in d]
        assert on_column == [
            f"CREATE INDEX transaction_{column[:-3]} ON public.ledger_transaction USING btree "
            f"({column}) WHERE ({column} IS NOT NULL)"
        ]
    assert not [d for d in definitions.values() if d.endswith("(inmate_id)")]


def test_the_deposit_table_has_no_index_on_the_inmate_alone():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'ledger_deposit'")
        definitions = [row[0] for row in cursor.fetchall()]
    assert not [d for d in definitions if d.endswith("(inmate_id)")]
    sql = "SELECT 1 FROM ledger_deposit WHERE inmate_id = %s"
    assert index_used(sql, [1]) == "deposit_inmate_newest"


def test_a_staff_transaction_is_found_through_its_partial_index_among_postings():
    inmate = InmateFactory()
    for _ in range(5):
        deposit(inmate, 1_000)
        post_purchase(inmate.pk, 500)
    staff = staff_at(inmate.facility)
    adjusted = services.adjust_balance(
        inmate_id=inmate.pk,
        amount_fen=-100,
        reason="breakage",
        staff_id=staff.pk,
        idempotency_key=key("adjust"),
    )
    sql = "SELECT id FROM ledger_transaction WHERE created_by_id = %s"
    assert index_used(sql, [staff.pk]) == "transaction_created_by"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, [staff.pk])
        assert cursor.fetchall() == [(adjusted.pk,)]


@pytest.mark.parametrize(
    ("column", "index"),
    [
        ("refund_of_id", "transaction_refund_of"),
        ("created_by_id", "transaction_created_by"),
        ("approved_by_id", "transaction_approved_by"),
        ("inmate_id", "transaction_inmate_newest"),
    ],
)
def test_a_lookup_by_the_column_reads_its_index(column, index):
    # The statement PostgreSQL's own foreign-key check sends when the referenced row goes,
    # and the shape of Django's PROTECT check.
    sql = f"SELECT 1 FROM ledger_transaction WHERE {column} = %s"  # noqa: S608 - a column name from the parameters above
    assert index_used(sql, [1]) == index
