"""Reconciliation reports, never fixes (invariant 8). Each corruption below is injected with
raw SQL, the way an attacker or a bug would, and is found as exactly its own finding."""

import uuid

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from pgtrigger import ignore

from ledger import batch, services
from ledger.models import Account, Entry, MonthlyPeriod, ReconciliationFinding
from ledger.reconciliation import run_checks
from tests.factories import FacilityFactory, InmateFactory

from .helpers import deposit, key

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
    services.debit_purchase(inmate_id=inmate.pk, amount_fen=1_500, idempotency_key=key())
    return inmate


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def found(findings):
    return sorted((f.check, f.subject) for f in findings)


def test_a_clean_ledger_gives_no_findings_and_no_email(inmate):
    run = batch.reconcile_ledger()
    assert (run.status, run.counts, run.findings.count()) == ("succeeded", {"findings": 0}, 0)
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


def test_a_credited_deposit_without_its_journal_transaction_is_found(inmate, facility):
    period = MonthlyPeriod.objects.get(inmate=inmate)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_deposit (reference, inmate_id, facility_id, period_id, amount_fen, "
            "fee_fen, currency, provider, provider_reference, status, idempotency_key, "
            "request_hash, created_at, expires_at, resolved_at) VALUES "
            "(%s, %s, %s, %s, 5000, 0, 'CNY', 'sandbox', '', 'credited', 'forged', '', %s, %s, %s) "
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
