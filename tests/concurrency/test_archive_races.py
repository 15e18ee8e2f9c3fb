"""A journal month detached while money moves (PostgreSQL, real threads): the postings wait
for the DETACH's instant and go on, none is lost, and reconciliation stays clean."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection

from ledger import batch, partitions
from ledger.models import Account, ArchivedAccountTotal, ArchivedJournalMonth, ScheduledRun
from ledger.reconciliation import run_checks
from tests.factories import InmateFactory
from tests.ledger.helpers import SHANGHAI, deposit

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]

JANUARY = dt.date(2018, 1, 1)


def test_deposits_posted_during_a_detach_all_land_and_reconciliation_stays_clean(run_together):
    partitions.ensure_partitions(now=dt.datetime(2018, 1, 15, tzinfo=SHANGHAI), ahead=0)
    inmate = InmateFactory(now=dt.datetime(2017, 12, 1, tzinfo=SHANGHAI))
    deposit(inmate, 10_000, now=dt.datetime(2018, 1, 10, 12, tzinfo=SHANGHAI))
    assert batch.reconcile_ledger().status == ScheduledRun.Status.SUCCEEDED
    try:
        outcomes = run_together(
            [
                lambda: call_command("detach_journal_month", "2018-01", stdout=io.StringIO()),
                *[lambda: deposit(inmate, 100) for _ in range(8)],
            ]
        )
        assert [outcome.error for outcome in outcomes] == [None] * 9
        assert JANUARY not in partitions.attached_months()
        assert ArchivedJournalMonth.objects.get().entry_count == 2
        spendable = Account.objects.get(inmate=inmate, kind="spendable")
        assert spendable.balance_fen == 10_800
        assert ArchivedAccountTotal.objects.get(account=spendable).amount_fen == 10_000
        assert run_checks() == []
        assert run_checks(exact=True) == []
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS ledger_entry_p201801")
