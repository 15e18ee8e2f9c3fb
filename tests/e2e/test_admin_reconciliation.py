"""Reconciliation as staff see it, in a real browser: the buttons on the Scheduled runs page
queue a run, and a run that found a problem shows each finding with what was expected and
what the ledger holds. The task runs in the live server's process, as a worker would run it."""

from unittest import mock

import pytest
from django.db import connection
from playwright.sync_api import expect

from ledger import services as ledger_services
from ledger import tasks
from ledger.models import Account, ScheduledRun
from tests.factories import FacilityFactory, InmateFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

RUNS = "/admin/ledger/scheduledrun/"


@pytest.fixture
def tasks_run_in_process():
    """``reconcile_ledger.delay`` runs the task at once, in the live server's thread."""
    with mock.patch.object(
        tasks.reconcile_ledger,
        "delay",
        side_effect=lambda **kwargs: tasks.reconcile_ledger(**kwargs),
    ) as delay:
        yield delay


@pytest.fixture
def inflated_account():
    facility = FacilityFactory(name="Riverside Prison")
    inmate = InmateFactory(facility=facility)
    reserved = ledger_services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=30_000,
        idempotency_key="e2e-reconcile",
    )
    ledger_services.credit_deposit(deposit_id=reserved.pk)
    spendable = Account.objects.get(inmate=inmate, kind="spendable")
    with connection.cursor() as cursor:  # what the kiosk exploit did: no entry says why
        cursor.execute(
            "UPDATE ledger_account SET balance_fen = balance_fen + 100000 WHERE id = %s",
            [spendable.pk],
        )
    return spendable


@pytest.mark.parametrize(
    ("button", "mode"),
    [("Run reconciliation now", "screened"), ("Run with every exact query", "exact")],
)
def test_a_run_from_the_admin_shows_its_finding(
    admin_page, tasks_run_in_process, inflated_account, button, mode
):
    page = admin_page
    page.goto(RUNS)
    page.get_by_role("button", name=button).click()

    expect(page.get_by_text("Reconciliation queued")).to_be_visible()
    run = ScheduledRun.objects.get(kind="reconciliation")
    assert (run.status, run.trigger, run.counts) == (
        "found_problems",
        "manual",
        {"findings": 1, "mode": mode},
    )
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("Found problems")

    row.locator("a").first.click()
    finding = page.locator("#findings-group .inline-related tbody tr").filter(
        has_text="cached_balance_mismatch"
    )
    expect(finding).to_contain_text(f"account {inflated_account.pk}")
    expect(finding).to_contain_text("30000")  # what the journal says
    expect(finding).to_contain_text("130000")  # what the cached balance claims
    expect(finding).to_contain_text("Riverside Prison")
    inflated_account.refresh_from_db()
    assert inflated_account.balance_fen == 130_000  # reported, not repaired
