"""A journal month detached while money moves (PostgreSQL, real threads): the postings wait
for the DETACH's instant only (not while the totals are stored) and go on, none is lost, and
reconciliation stays clean."""

import datetime as dt
import io
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from ledger import archive, batch, partitions
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


def test_a_posting_does_not_wait_while_the_detach_stores_its_totals():
    # The detach stores the month's totals (most of its time at scale) before it locks the
    # journal; their foreign-key checks share the account rows a posting locks. Held there,
    # between the totals and the lock, the detach must not hold up a deposit to an account
    # whose total it has just stored: the deposit runs under a lock timeout, which it would
    # reach if it waited.
    partitions.ensure_partitions(now=dt.datetime(2018, 1, 15, tzinfo=SHANGHAI), ahead=0)
    inmate = InmateFactory(now=dt.datetime(2017, 12, 1, tzinfo=SHANGHAI))
    deposit(inmate, 10_000, now=dt.datetime(2018, 1, 10, 12, tzinfo=SHANGHAI))
    assert batch.reconcile_ledger().status == ScheduledRun.Status.SUCCEEDED
    totals_stored, go_on = threading.Event(), threading.Event()
    outcome = {}

    def report(message: str) -> None:
        if "ledger_entry_p201801" in message:  # "Detaching <table> from the journal…"
            totals_stored.set()
            assert go_on.wait(60)

    def detach() -> None:
        try:
            outcome["month"] = archive.detach_oldest_month(month=JANUARY, report=report)
        except BaseException as error:  # reported to the test's thread
            outcome["error"] = error
        finally:
            totals_stored.set()
            connection.close()

    detaching = threading.Thread(target=detach)
    detaching.start()
    try:
        assert totals_stored.wait(60)
        assert "error" not in outcome, outcome
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '5s'")
        try:
            deposit(inmate, 100)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        go_on.set()
        detaching.join(60)
        assert "error" not in outcome, outcome
        assert outcome["month"].entry_count == 2
        spendable = Account.objects.get(inmate=inmate, kind="spendable")
        assert spendable.balance_fen == 10_100
        assert ArchivedAccountTotal.objects.get(account=spendable).amount_fen == 10_000
        assert run_checks() == []
    finally:
        go_on.set()
        detaching.join(60)
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS ledger_entry_p201801")
