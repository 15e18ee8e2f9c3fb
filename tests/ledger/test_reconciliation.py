"""Reconciliation reports, never fixes (invariant 8). Each corruption below is injected with
raw SQL, the way an attacker or a bug would, and is found as exactly its own finding, the same
with the screens (the nightly path) as with every exact query."""

import threading
import time
import uuid

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from pgtrigger import ignore

from ledger import batch
from ledger.models import Account, Deposit, Entry, MonthlyPeriod, ReconciliationFinding, Transaction
from ledger.reconciliation import CHECKS, Check, Screen, register_check
from ledger.reconciliation import run_checks as run_screened
from tests.factories import FacilityFactory, InmateFactory

from .helpers import deposit, post_purchase

pytestmark = pytest.mark.django_db


@pytest.fixture
def facility():
    return FacilityFactory(
        deposit_fee_fixed_fen=100, trust_alert_emails="trust@example.org, audit@example.org"
    )


@pytest.fixture
def inmate(facility):
    inmate = InmateFactory(facility=facility)
    deposit(inmate, 20_000)
    post_purchase(inmate.pk, 1_500)
    return inmate


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def found(findings):
    return sorted((f.check, f.subject) for f in findings)


def run_checks():
    """The findings of a screened run, checked against a run of every exact query."""
    findings = run_screened()
    assert sorted(findings, key=str) == sorted(run_screened(exact=True), key=str)
    return findings


def test_a_clean_ledger_gives_no_findings_and_no_email(inmate):
    run = batch.reconcile_ledger()
    assert (run.status, run.counts, run.findings.count()) == (
        "succeeded",
        {"findings": 0, "mode": "screened"},
        0,
    )
    assert batch.reconcile_ledger(exact=True).counts == {"findings": 0, "mode": "exact"}
    assert mail.outbox == []


def test_an_inflated_cached_balance_is_found(inmate):
    # What the JPay kiosk exploit did: the balance goes up, no journal entry says why.
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    sql(
        "UPDATE ledger_account SET balance_fen = balance_fen + 100000 WHERE id = %s", [spendable.pk]
    )
    findings = run_checks()
    assert found(findings) == [("cached_balance_mismatch", f"account {spendable.pk}")]
    assert (findings[0].expected, findings[0].actual) == (18_500, 118_500)


@pytest.mark.django_db(transaction=True)  # the journal is committed before it is tampered with
def test_an_entry_deleted_with_the_trigger_disabled_is_found(inmate):
    fee_entry = Entry.objects.get(account__kind="fees")
    with ignore("ledger.Entry:entry_append_only"):
        sql("DELETE FROM ledger_entry WHERE id = %s", [fee_entry.pk])
    assert found(run_checks()) == [
        ("transaction_unbalanced", f"transaction {fee_entry.transaction_id}")
    ]


def test_a_transaction_without_entries_is_found(inmate):
    # Nothing in it to sum to anything but zero: only the missing entries give it away.
    sql("SET LOCAL session_replication_role = replica")  # no has-entries trigger
    empty = Transaction.objects.create(
        kind=Transaction.Kind.ADJUSTMENT,
        facility=inmate.facility,
        inmate=inmate,
        idempotency_scope="system",
        idempotency_key="no-entries",
        request_hash="",
        created_at=timezone.now(),
    )
    sql("SET LOCAL session_replication_role = origin")
    findings = run_checks()
    assert found(findings) == [("transaction_unbalanced", f"transaction {empty.pk}")]
    assert (findings[0].expected, findings[0].actual) == (0, 0)


def test_a_credited_deposit_without_its_journal_transaction_is_found(inmate, facility):
    period = MonthlyPeriod.objects.get(inmate=inmate)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_deposit (reference, inmate_id, facility_id, period_id, amount_fen, "
            "fee_fen, currency, provider, provider_reference, status, idempotency_scope, "
            "idempotency_key, request_hash, created_at, expires_at, resolved_at) VALUES "
            "(%s, %s, %s, %s, 5000, 0, 'CNY', 'sandbox', '', 'credited', 'system', 'forged', '', "
            "%s, %s, %s) "
            "RETURNING id",
            [uuid.uuid4(), inmate.pk, facility.pk, period.pk, now, now, now],
        )
        forged_id = cursor.fetchone()[0]
    sql(
        "UPDATE ledger_monthlyperiod SET received_fen = received_fen + 5000 WHERE id = %s",
        [period.pk],
    )
    assert found(run_checks()) == [("credited_deposit_without_transaction", f"deposit {forged_id}")]


def test_a_period_disagreeing_with_its_deposits_is_found(inmate):
    period = MonthlyPeriod.objects.get(inmate=inmate)
    sql(
        "UPDATE ledger_monthlyperiod SET received_fen = received_fen - 500 WHERE id = %s",
        [period.pk],
    )
    findings = run_checks()
    assert found(findings) == [("period_received_mismatch", f"period {period.pk}")]
    assert (findings[0].expected, findings[0].actual) == (20_000, 19_500)


def test_a_run_with_findings_stores_them_emails_the_facility_and_changes_no_money(inmate):
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    sql("UPDATE ledger_account SET balance_fen = balance_fen + 1 WHERE id = %s", [spendable.pk])

    run = batch.reconcile_ledger(trigger="manual")

    assert run.status == "found_problems"
    finding = ReconciliationFinding.objects.get(run=run)
    assert (finding.check_name, finding.facility_id) == (
        "cached_balance_mismatch",
        inmate.facility_id,
    )
    assert (finding.expected, finding.actual) == ("18500", "18501")
    spendable.refresh_from_db()
    assert spendable.balance_fen == 18_501  # reported, not "fixed"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["trust@example.org", "audit@example.org"]
    assert f"account {spendable.pk}" in mail.outbox[0].body


def test_a_deposit_credited_to_another_inmate_is_found(inmate, facility):
    # The balance goes to a second inmate, the journal and both cached balances are moved
    # to match, the transaction's header too: every sum still agrees except the deposit's.
    other = InmateFactory(facility=facility)
    credited = deposit(inmate, 3_000)
    credit = Transaction.objects.get(deposit=credited)
    leg = Entry.objects.get(transaction=credit, account__inmate=inmate)
    mine = Account.objects.get(inmate=inmate, kind="spendable")
    theirs = Account.objects.get(inmate=other, kind="spendable")
    with ignore("ledger.Entry:entry_append_only", "ledger.Transaction:transaction_append_only"):
        sql("UPDATE ledger_entry SET account_id = %s WHERE id = %s", [theirs.pk, leg.pk])
        sql("UPDATE ledger_transaction SET inmate_id = %s WHERE id = %s", [other.pk, credit.pk])
    sql("UPDATE ledger_account SET balance_fen = balance_fen - 3000 WHERE id = %s", [mine.pk])
    sql("UPDATE ledger_account SET balance_fen = balance_fen + 3000 WHERE id = %s", [theirs.pk])

    findings = run_checks()

    assert found(findings) == [("credited_deposit_without_transaction", f"deposit {credited.pk}")]
    assert (findings[0].expected, findings[0].actual) == (3_000, 0)


def test_a_failed_deposit_that_still_has_its_credit_is_found(inmate):
    credited = deposit(inmate, 2_500)
    sql("UPDATE ledger_deposit SET status = 'failed' WHERE id = %s", [credited.pk])
    sql(
        "UPDATE ledger_monthlyperiod SET received_fen = received_fen - 2500 WHERE id = %s",
        [credited.period_id],
    )
    findings = run_checks()
    assert found(findings) == [("credited_deposit_without_transaction", f"deposit {credited.pk}")]
    assert (findings[0].expected, findings[0].actual) == (0, 2_500)


def test_what_a_screen_sees_but_no_row_can_name_is_reported_as_the_disagreement(inmate, settings):
    # An entry whose transaction does not exist (foreign key and triggers bypassed): no
    # transaction is unbalanced, but the journal as a whole is.
    fees = Account.objects.get(kind="fees", facility=inmate.facility)
    sql("SET LOCAL session_replication_role = replica")  # no foreign-key or other triggers
    sql(
        "INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "
        "VALUES (%s, %s, 700, now())",
        [10**12, fees.pk],
    )
    sql("SET LOCAL session_replication_role = origin")
    findings = run_screened()
    assert found(findings) == [("transaction_unbalanced", "whole ledger")]
    assert findings[0].facility_id is None
    assert run_screened(exact=True) == []  # what the exact queries alone would have missed

    settings.ADMINS = [("Operators", "ops@example.org")]
    run = batch.reconcile_ledger()
    assert run.findings.get().subject == "whole ledger"
    assert [message.to for message in mail.outbox] == [["ops@example.org"]]


@pytest.mark.django_db(transaction=True)
def test_payments_committed_during_a_run_do_not_make_its_sides_disagree(inmate):
    # The cached-balance screen, slowed so that a deposit commits between its two sides.
    # Both sides read one snapshot, so the run is clean; read separately, the side read
    # after the deposit would be 1,000 fen heavier and the run would report it.
    cached = next(check for check in CHECKS if check.name == "cached_balance_mismatch")
    paused = Check(
        cached.name,
        cached.description,
        cached.sql,
        cached.subject,
        Screen(
            f"SELECT s.* FROM ({cached.screen.one_side}) s, "  # noqa: S608 - the check's own screen SQL, a constant
            "(SELECT pg_sleep(1.5)::text AS paused) p",
            cached.screen.other_side,
        ),
    )

    def pay_during_the_pause():
        time.sleep(0.5)
        try:
            deposit(inmate, 1_000)
        finally:
            connection.close()

    payer = threading.Thread(target=pay_during_the_pause)
    payer.start()
    findings = run_screened(checks=(paused,))
    payer.join()

    assert Deposit.objects.filter(inmate=inmate, amount_fen=1_000, status="credited").exists()
    assert findings == []
    assert run_screened() == []


def test_a_deposit_moved_to_the_inmates_held_account_is_found(inmate):
    # Same inmate, same total: but held money is not the family's deposit to spend.
    credited = deposit(inmate, 1_200)
    leg = Entry.objects.get(transaction__deposit=credited, account__kind="spendable")
    held = Account.objects.get(inmate=inmate, kind="held")
    with ignore("ledger.Entry:entry_append_only"):
        sql("UPDATE ledger_entry SET account_id = %s WHERE id = %s", [held.pk, leg.pk])
    sql(
        "UPDATE ledger_account SET balance_fen = balance_fen + CASE kind WHEN 'held' THEN 1200 "
        "ELSE -1200 END WHERE inmate_id = %s",
        [inmate.pk],
    )
    assert found(run_checks()) == [
        ("credited_deposit_without_transaction", f"deposit {credited.pk}")
    ]


def test_payments_adds_its_settlement_check_through_the_registry_once():
    """The ledger does not import payments: payments registers its check at start-up, and a
    second registration of the same check changes nothing."""
    names = [check.name for check in CHECKS]
    assert names.count("provider_settlement_mismatch") == 1
    register_check(next(check for check in CHECKS if check.name == "provider_settlement_mismatch"))
    assert [check.name for check in CHECKS] == names
