"""Invariants 1 and 5 in the database itself: an UPDATE or DELETE of the journal made with
raw SQL is refused, and a transaction whose entries do not sum to zero cannot commit."""

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from ledger.models import Account, Entry, Transaction
from tests.factories import InmateFactory

from .helpers import deposit

pytestmark = pytest.mark.django_db


def _raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_updating_a_journal_entry_with_raw_sql_is_refused():
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    entry = Entry.objects.filter(account__inmate=inmate).get()
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        _raw("UPDATE ledger_entry SET amount_fen = 999999 WHERE id = %s", [entry.pk])
    entry.refresh_from_db()
    assert entry.amount_fen == 10_000


def test_deleting_a_journal_entry_with_raw_sql_is_refused():
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    count = Entry.objects.count()
    with pytest.raises(ProgrammingError, match="Cannot update or delete rows"):
        _raw("DELETE FROM ledger_entry")
    assert Entry.objects.count() == count


def test_updating_or_deleting_a_journal_transaction_is_refused():
    inmate = InmateFactory()
    deposit(inmate, 10_000)
    with pytest.raises(ProgrammingError, match="Cannot update or delete"):
        _raw("UPDATE ledger_transaction SET memo = 'edited'")
    with pytest.raises(ProgrammingError, match="Cannot update or delete"):
        _raw("DELETE FROM ledger_transaction")


def _insert_transaction(cursor, facility_id, key):
    cursor.execute(
        "INSERT INTO ledger_transaction (kind, idempotency_scope, idempotency_key, request_hash, "
        "facility_id, memo, created_at) VALUES ('adjustment', 'system', %s, '', %s, '', %s) "
        "RETURNING id",
        [key, facility_id, timezone.now()],
    )
    return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_an_unbalanced_transaction_cannot_commit():
    inmate = InmateFactory()
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    adjustments = Account.objects.get(facility=inmate.facility, kind="adjustments")
    # The check is deferred: the statements go through, the commit is refused.
    with (
        pytest.raises(IntegrityError, match="does not balance"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        transaction_id = _insert_transaction(cursor, inmate.facility_id, "unbalanced")
        cursor.execute(
            "INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "
            "SELECT %s, %s, 100, created_at FROM ledger_transaction WHERE id = %s "
            "UNION ALL SELECT %s, %s, -99, created_at FROM ledger_transaction WHERE id = %s",
            [transaction_id, spendable.pk, transaction_id]
            + [transaction_id, adjustments.pk, transaction_id],
        )
    assert not Transaction.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_transaction_without_entries_cannot_commit():
    inmate = InmateFactory()
    with (
        pytest.raises(IntegrityError, match="has no entries"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        _insert_transaction(cursor, inmate.facility_id, "empty")
    assert not Transaction.objects.exists()


def test_a_negative_spendable_balance_is_refused_by_the_database():
    inmate = InmateFactory()
    with pytest.raises(IntegrityError):
        _raw(
            "UPDATE ledger_account SET balance_fen = -1 WHERE inmate_id = %s AND kind = "
            "'spendable'",
            [inmate.pk],
        )


def test_spendable_plus_pending_over_the_cap_is_refused_by_the_database():
    inmate = InmateFactory()
    with pytest.raises(IntegrityError):
        _raw(
            "UPDATE ledger_account SET balance_fen = 400000, pending_fen = 100001 "
            "WHERE inmate_id = %s AND kind = 'spendable'",
            [inmate.pk],
        )


def test_a_period_over_its_monthly_cap_is_refused_by_the_database():
    inmate = InmateFactory()
    deposit(inmate, 100_000)
    with pytest.raises(IntegrityError):
        _raw("UPDATE ledger_monthlyperiod SET reserved_fen = 1 WHERE inmate_id = %s", [inmate.pk])
