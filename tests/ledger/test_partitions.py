"""The journal's entries partitioned by month (PostgreSQL): every partition, old or new, keeps
the journal append-only and balanced; the daily task creates months ahead, once, and moves
into a new month's partition what the default partition held of it."""

import datetime as dt

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction

from ledger import partitions, tasks
from ledger.models import Account, Entry, Transaction
from ledger.reconciliation import run_checks
from tests.factories import InmateFactory

from .helpers import SHANGHAI, deposit

pytestmark = pytest.mark.django_db

OLD = dt.datetime(2019, 3, 15, 12, tzinfo=SHANGHAI)  # a month the migration made no partition for


def _partition_of(entry_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM ledger_entry WHERE id = %s", [entry_id]
        )
        return cursor.fetchone()[0]


def _months_ahead(count: int) -> dt.date:
    return partitions.add_months(partitions.month_of(dt.datetime.now(SHANGHAI)), count)


def _raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_journal_is_partitioned_by_month_with_months_ahead_and_a_default():
    assert partitions.is_partitioned()
    months = partitions.attached_months()
    assert [_months_ahead(n) for n in range(partitions.MONTHS_AHEAD + 1)] == months[-4:]
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    entry = Entry.objects.filter(account__inmate=inmate).get()
    assert _partition_of(entry.pk) == partitions.partition_name(_months_ahead(0))
    assert entry.created_at == entry.transaction.created_at


@pytest.mark.parametrize("where", ["old", "new"])
def test_a_row_in_an_old_or_a_new_partition_cannot_be_updated_or_deleted(where):
    if where == "old":
        partitions.ensure_partitions(now=OLD, ahead=0)
        now = OLD
    else:
        assert tasks.create_journal_partitions.apply(kwargs={}).get() == []  # all there already
        partitions.ensure_partitions(ahead=partitions.MONTHS_AHEAD + 2)
        now = partitions.month_start(_months_ahead(partitions.MONTHS_AHEAD + 2)) + dt.timedelta(
            days=3
        )
    inmate = InmateFactory()
    deposit(inmate, 10_000, now=now)
    entry = Entry.objects.filter(account__inmate=inmate).get()
    assert _partition_of(entry.pk) == partitions.partition_name(partitions.month_of(now))
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        _raw("UPDATE ledger_entry SET amount_fen = 999999 WHERE id = %s", [entry.pk])
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        _raw("DELETE FROM ledger_entry WHERE id = %s", [entry.pk])
    # Straight at the partition, not through the parent: the same triggers are there.
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        _raw(f"DELETE FROM {_partition_of(entry.pk)}")  # noqa: S608 - a partition's own name
    entry.refresh_from_db()
    assert entry.amount_fen == 10_000


def _post_raw(cursor, *, facility_id, key, at, legs):
    cursor.execute(
        "INSERT INTO ledger_transaction (kind, idempotency_scope, idempotency_key, request_hash, "
        "facility_id, memo, created_at) VALUES ('adjustment', 'system', %s, '', %s, '', %s) "
        "RETURNING id",
        [key, facility_id, at],
    )
    transaction_id = cursor.fetchone()[0]
    for account_id, amount_fen, entry_at in legs:
        cursor.execute(
            "INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "
            "VALUES (%s, %s, %s, %s)",
            [transaction_id, account_id, amount_fen, entry_at],
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["old", "new", "default"])
def test_an_unbalanced_transaction_cannot_commit_in_any_partition(where):
    at = {
        "old": OLD,
        "new": partitions.month_start(_months_ahead(1)) + dt.timedelta(hours=1),
        # Far enough ahead that no partition exists: the default partition takes it.
        "default": dt.datetime(2099, 6, 1, 12, tzinfo=SHANGHAI),
    }[where]
    created = partitions.ensure_partitions(now=OLD, ahead=0) if where == "old" else []
    try:
        inmate = InmateFactory()
        spendable = Account.objects.get(inmate=inmate, kind="spendable")
        adjustments = Account.objects.get(facility=inmate.facility, kind="adjustments")
        with (
            pytest.raises(IntegrityError, match="does not balance"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            _post_raw(
                cursor,
                facility_id=inmate.facility_id,
                key=f"unbalanced-{where}",
                at=at,
                legs=[(spendable.pk, 100, at), (adjustments.pk, -99, at)],
            )
        assert not Transaction.objects.exists()
    finally:
        # Committed (the test is transactional): an old month left attached would be the
        # journal's oldest for every later test, and a detach takes the oldest.
        with connection.cursor() as cursor:
            for table in created:
                cursor.execute(f"DROP TABLE {table}")


@pytest.mark.django_db(transaction=True)
def test_an_entry_dated_unlike_its_transaction_cannot_commit():
    # Balanced, but one leg claims another month: it would sit in another partition, where
    # the month's statement and the transaction's balance check would not see it.
    inmate = InmateFactory()
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    adjustments = Account.objects.get(facility=inmate.facility, kind="adjustments")
    at = dt.datetime.now(SHANGHAI)
    with (
        pytest.raises(IntegrityError, match="is not dated as its transaction"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        _post_raw(
            cursor,
            facility_id=inmate.facility_id,
            key="misdated",
            at=at,
            legs=[(adjustments.pk, -100, at + dt.timedelta(days=40)), (spendable.pk, 100, at)],
        )
    assert not Transaction.objects.exists()


def test_creating_partitions_is_idempotent_and_moves_what_the_default_partition_held():
    far = dt.datetime(2099, 6, 10, 12, tzinfo=SHANGHAI)
    inmate = InmateFactory()
    deposit(inmate, 12_345, now=far)
    entries = list(Entry.objects.filter(transaction__created_at=far).order_by("id"))
    assert len(entries) == 2
    assert {_partition_of(entry.pk) for entry in entries} == {partitions.DEFAULT_PARTITION}

    created = partitions.ensure_partitions(now=far, ahead=0)
    assert created == ["ledger_entry_p209906"]
    assert partitions.ensure_partitions(now=far, ahead=0) == []
    moved = list(Entry.objects.filter(transaction__created_at=far).order_by("id"))
    assert [(e.pk, e.account_id, e.amount_fen) for e in moved] == [
        (e.pk, e.account_id, e.amount_fen) for e in entries
    ]
    assert {_partition_of(entry.pk) for entry in moved} == {"ledger_entry_p209906"}
    # The moved rows are guarded like any others, and the ledger still reconciles.
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        _raw("DELETE FROM ledger_entry_p209906")
    assert run_checks() == []
