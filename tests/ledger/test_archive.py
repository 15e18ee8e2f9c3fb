"""Detaching the journal's oldest month for archive (PostgreSQL): refused for a month
reconciliation may still need; once detached, reconciliation stays clean and every balance,
statement and trust balance reads the same, and money keeps moving."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from commissary import errors
from ledger import batch, partitions, selectors, services
from ledger.archive import MonthArchived
from ledger.models import (
    Account,
    ArchivedAccountTotal,
    ArchivedJournalMonth,
    Entry,
    ScheduledRun,
    Statement,
)
from ledger.reconciliation import run_checks
from ledger.statements import generate_statements
from reports.selectors import trust_balances_at
from tests.factories import InmateFactory

from .helpers import SHANGHAI, deposit, key, post_purchase

JANUARY = dt.date(2018, 1, 1)
FEBRUARY = dt.date(2018, 2, 1)


def _at(month: dt.date, day: int) -> dt.datetime:
    return dt.datetime(month.year, month.month, day, 12, tzinfo=SHANGHAI)


def _detach(*arguments) -> str:
    out = io.StringIO()
    call_command("detach_journal_month", *arguments, stdout=out)
    return out.getvalue()


def _refusal(*arguments) -> str:
    with pytest.raises(CommandError) as refused:
        _detach(*arguments)
    return str(refused.value)


def _clean_run(started_at: dt.datetime, status=ScheduledRun.Status.SUCCEEDED) -> ScheduledRun:
    return ScheduledRun.objects.create(
        kind=ScheduledRun.Kind.RECONCILIATION, status=status, started_at=started_at
    )


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_newest_months_are_refused():
    # A fresh test database's oldest partition is this month's.
    oldest = partitions.attached_months()[0]
    assert oldest == partitions.month_of(timezone.now())
    assert "too recent" in _refusal()
    # Last month is refused too: it has not ended before last month began.
    last_month = partitions.add_months(oldest, -1)
    partitions.ensure_partitions(now=partitions.month_start(last_month), ahead=0)
    assert partitions.attached_months()[0] == last_month
    _clean_run(timezone.now())
    assert "too recent" in _refusal(f"{last_month:%Y-%m}")
    assert partitions.attached_months()[0] == last_month
    assert not ArchivedJournalMonth.objects.exists()


@pytest.mark.django_db
def test_only_the_oldest_month_may_be_detached():
    partitions.ensure_partitions(now=_at(JANUARY, 15), ahead=1)
    _clean_run(timezone.now())
    assert "Only the oldest month, 2018-01" in _refusal("2018-02")
    assert "A month is written YYYY-MM" in _refusal("February")


@pytest.mark.django_db
def test_a_month_without_a_clean_reconciliation_since_it_ended_is_refused():
    partitions.ensure_partitions(now=_at(JANUARY, 15), ahead=0)
    deposit(InmateFactory(), 10_000, now=_at(JANUARY, 10))
    assert "No reconciliation run has finished since 2018-01 ended" in _refusal()
    # A clean run that started before the month ended does not vouch for it.
    _clean_run(_at(JANUARY, 20))
    assert "No reconciliation run has finished since 2018-01 ended" in _refusal()
    # A run still going proves nothing; the latest finished one found problems.
    _clean_run(timezone.now() - dt.timedelta(hours=2), ScheduledRun.Status.FOUND_PROBLEMS)
    _clean_run(timezone.now(), ScheduledRun.Status.RUNNING)
    assert "did not come out clean" in _refusal()
    assert "did not come out clean" in _refusal("--dry-run")
    _clean_run(timezone.now() - dt.timedelta(hours=1))
    assert "Would detach 2018-01 as table ledger_entry_p201801: 2 entries on 2 accounts" in (
        _detach("--dry-run")
    )
    # The dry run changed nothing.
    assert partitions.attached_months()[0] == JANUARY
    assert not ArchivedJournalMonth.objects.exists()


@pytest.mark.django_db
def test_a_month_with_entries_left_in_the_default_partition_is_refused():
    partitions.ensure_partitions(now=_at(JANUARY, 15), ahead=0)
    # December 2017 has no partition: its money goes to the default partition.
    deposit(InmateFactory(), 10_000, now=_at(dt.date(2017, 12, 1), 10))
    _clean_run(timezone.now())
    assert "default partition still holds 2 entries dated before 2018-01 ended" in _refusal()
    assert partitions.attached_months()[0] == JANUARY


def _figures(inmate, sales: Account):
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    statement = Statement.objects.get(inmate=inmate, month=FEBRUARY)
    return {
        "spendable": spendable.balance_fen,
        "sales": selectors.account_balance_fen(account=sales),
        "statement": (statement.opening_fen, statement.closing_fen),
        "trust": trust_balances_at(facility=inmate.facility, day=dt.date(2018, 2, 28)),
    }


@pytest.mark.django_db(transaction=True)
def test_a_detached_month_leaves_reconciliation_clean_and_every_balance_as_it_was():
    partitions.ensure_partitions(now=_at(JANUARY, 15), ahead=1)
    admitted = {"now": _at(dt.date(2017, 12, 1), 1)}
    inmate, other = InmateFactory(**admitted), InmateFactory(**admitted)
    deposit(inmate, 10_000, now=_at(JANUARY, 10))
    january_purchase = post_purchase(inmate.pk, 3_000, now=_at(JANUARY, 20))
    deposit(other, 4_000, now=_at(JANUARY, 11))
    deposit(inmate, 5_000, now=_at(FEBRUARY, 10))
    purchase = post_purchase(inmate.pk, 1_000, now=_at(FEBRUARY, 12))
    sales = Account.objects.get(facility=inmate.facility, kind=Account.Kind.SALES)
    run = generate_statements(facility_id=inmate.facility_id, month=FEBRUARY)
    assert run.status == ScheduledRun.Status.SUCCEEDED, run.error
    before = _figures(inmate, sales)
    assert before["statement"] == (7_000, 11_000)
    assert before["sales"] == 4_000
    assert batch.reconcile_ledger().status == ScheduledRun.Status.SUCCEEDED
    january_entries = Entry.objects.filter(created_at__lt=partitions.month_start(FEBRUARY))
    assert january_entries.count() == 6
    accounts = january_entries.values("account").distinct().count()
    try:
        output = _detach("2018-01", "--by", "Wang Li (DBA)")
        assert f"Kept the totals of {accounts} accounts over 6 entries." in output
        assert "Detached 2018-01: table ledger_entry_p201801" in output

        # The month left the journal and stands alone, rows and all, for pg_dump.
        assert JANUARY not in partitions.attached_months()
        assert not january_entries.exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*), SUM(amount_fen) FROM ledger_entry_p201801")
            assert cursor.fetchone() == (6, 0)
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_inherits "
                "WHERE inhrelid = 'ledger_entry_p201801'::regclass)"
            )
            assert cursor.fetchone() == (False,)
        archived = ArchivedJournalMonth.objects.get()
        assert (archived.month, archived.table_name, archived.entry_count) == (
            JANUARY,
            "ledger_entry_p201801",
            6,
        )
        assert archived.detached_by == "Wang Li (DBA)"
        totals = dict(ArchivedAccountTotal.objects.values_list("account__kind", "amount_fen"))
        assert sum(ArchivedAccountTotal.objects.values_list("amount_fen", flat=True)) == 0
        assert totals["sales"] == 3_000

        # Reconciliation, screened and exact, is clean; balances, a later month's statement
        # drawn again and the trust balances are the same.
        assert run_checks() == []
        assert run_checks(exact=True) == []
        generate_statements(facility_id=inmate.facility_id, month=FEBRUARY)
        assert _figures(inmate, sales) == before
        # January's statement is not drawn again without its lines.
        with pytest.raises(MonthArchived, match="2018-01 are not drawn again"):
            generate_statements(facility_id=inmate.facility_id, month=JANUARY)

        # Money keeps moving, and stays reconciled.
        deposit(other, 2_500)
        post_purchase(inmate.pk, 500)
        assert Account.objects.get(inmate=other, kind="spendable").balance_fen == 6_500
        assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 10_500
        assert selectors.account_balance_fen(account=sales) == 4_500
        # A purchase of the archived month has nothing left to refund; a later one has.
        with pytest.raises(errors.RefundExceedsPurchase):
            services.refund_purchase(
                idempotency_scope="system",
                purchase_id=january_purchase.pk,
                amount_fen=100,
                idempotency_key=key("refund"),
            )
        services.refund_purchase(
            idempotency_scope="system",
            purchase_id=purchase.pk,
            amount_fen=100,
            idempotency_key=key("refund"),
        )
        assert selectors.account_balance_fen(account=sales) == 4_400
        assert batch.reconcile_ledger().status == ScheduledRun.Status.SUCCEEDED

        # February may now go too, after this clean run; January is gone for good.
        assert "Only the oldest month, 2018-02" in _refusal("2018-01")
        assert "Would detach 2018-02" in _detach("--dry-run")
    finally:
        with connection.cursor() as cursor:
            # The archive's last step; February's partition goes too, so that the next test
            # finds the months a fresh database has.
            cursor.execute("DROP TABLE IF EXISTS ledger_entry_p201801, ledger_entry_p201802")
    assert not _table_exists("ledger_entry_p201801")


def test_the_command_records_the_system_user_when_no_one_is_named(monkeypatch):
    # Parsed like the command line: --by defaults to the user the command runs as.
    from ledger.management.commands import detach_journal_month

    monkeypatch.setattr(detach_journal_month.getpass, "getuser", lambda: "ops")
    parser = detach_journal_month.Command().create_parser("manage.py", "detach_journal_month")
    assert parser.parse_args([]).by == "ops"
    assert parser.parse_args(["--by", "Wang Li"]).by == "Wang Li"

    def nameless():
        raise KeyError("uid not found: 1234")

    monkeypatch.setattr(detach_journal_month.getpass, "getuser", nameless)
    parser = detach_journal_month.Command().create_parser("manage.py", "detach_journal_month")
    assert parser.parse_args([]).by == ""
