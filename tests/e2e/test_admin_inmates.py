"""Staff flows for inmates in the admin, driven through a real browser: intake, release and
transfer, and the journal staying read-only. Each test checks what the staff member sees and
what the database holds afterwards."""

import re

import pytest
from playwright.sync_api import Page, expect

from facilities.models import Inmate
from ledger import services as ledger_services
from ledger.models import Account, Entry, Transaction
from tests.factories import FacilityFactory, InmateFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # whitenoise looks for collected files when the live server starts; these tests have none.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

INMATE_LIST = "/admin/facilities/inmate/"


def give_money(inmate, amount_fen: int) -> None:
    """A family deposit, reserved and credited: what a paid deposit does."""
    deposit = ledger_services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=f"e2e-deposit-{inmate.pk}",
    )
    ledger_services.credit_deposit(deposit_id=deposit.pk)


def inmate_row(page: Page, inmate_number: str):
    return page.locator("#result_list tbody tr").filter(has_text=inmate_number)


def run_action(page: Page, inmate_number: str, action_label: str) -> None:
    inmate_row(page, inmate_number).locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label=action_label)
    page.get_by_role("button", name="Go").click()


def fill_intake_form(page: Page, *, facility, inmate_number: str, surname: str, pin: str):
    page.goto(INMATE_LIST)
    page.get_by_role("link", name="Add inmate").click()
    page.get_by_label("Facility").select_option(label=facility.name)
    page.get_by_label("Inmate number").fill(inmate_number)
    page.get_by_label("Surname").fill(surname)
    page.get_by_label("Pin").fill(pin)
    page.get_by_role("button", name="Save", exact=True).click()


def test_staff_signs_in_and_admits_an_inmate_with_both_ledger_accounts(page, superuser, sign_in):
    facility = FacilityFactory(name="Qincheng")

    sign_in(page, superuser)
    # The admin's own stylesheet loaded: the header has its coloured background.
    header_background = page.locator("#header").evaluate(
        "header => getComputedStyle(header).backgroundColor"
    )
    assert header_background not in ("", "rgba(0, 0, 0, 0)", "transparent")
    # The home page is the work queue; the model list is one click away.
    page.get_by_role("link", name="All screens").click()
    page.get_by_role("link", name="Inmates", exact=True).click()
    expect(page.get_by_role("heading", name="Select inmate to change")).to_be_visible()
    fill_intake_form(page, facility=facility, inmate_number="Q-2024-0001", surname="Li", pin="4821")

    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")
    row = inmate_row(page, "Q-2024-0001")
    expect(row).to_have_count(1)
    expect(row.locator("td.field-surname")).to_have_text("Li")
    expect(row.locator("td.field-facility")).to_have_text("Qincheng")
    expect(row.locator("td.field-spendable")).to_have_text("¥0.00")

    inmate = Inmate.objects.get(facility=facility, inmate_number="Q-2024-0001")
    assert inmate.surname == "Li"
    assert inmate.status == Inmate.Status.ACTIVE
    assert inmate.check_pin("4821")
    assert not inmate.check_pin("0000")
    accounts = {account.kind: account for account in inmate.ledger_accounts.all()}
    assert set(accounts) == {Account.Kind.SPENDABLE, Account.Kind.HELD}
    assert all(account.balance_fen == 0 for account in accounts.values())
    assert all(account.facility_id == facility.pk for account in accounts.values())


def test_intake_with_a_duplicate_inmate_number_shows_an_error_and_creates_nothing(admin_page):
    facility = FacilityFactory(name="Qincheng")
    existing = InmateFactory(facility=facility, inmate_number="Q-2024-0002", surname="Zhao")
    inmates_before, accounts_before = Inmate.objects.count(), Account.objects.count()

    fill_intake_form(
        admin_page, facility=facility, inmate_number="Q-2024-0002", surname="Sun", pin="1357"
    )

    expect(admin_page.locator(".errornote")).to_be_visible()
    expect(admin_page.locator(".errorlist")).to_contain_text(
        "Inmate with this Facility and Inmate number already exists."
    )
    assert Inmate.objects.count() == inmates_before
    assert Account.objects.count() == accounts_before
    assert Inmate.objects.get(pk=existing.pk).surname == "Zhao"


def test_releasing_an_inmate_pays_out_everything_and_closes_the_accounts(admin_page, tmp_path):
    inmate = InmateFactory(inmate_number="Q-2024-0003", surname="Wu", given_name="Lei")
    give_money(inmate, 12_345)

    admin_page.goto(INMATE_LIST)
    row = inmate_row(admin_page, "Q-2024-0003")
    expect(row.locator("td.field-spendable")).to_have_text("¥123.45")
    expect(row.locator("td.field-held")).to_have_text("¥0.00")
    # Kept for a person to look at when the list seems wrong; pytest keeps recent tmp dirs.
    admin_page.screenshot(path=tmp_path / "inmate-list.png", full_page=True)

    run_action(
        admin_page, "Q-2024-0003", "Release selected inmates (pay out and close their accounts)"
    )
    # The confirmation page shows the money that will be paid out, and nothing has moved yet.
    expect(admin_page.locator("table.confirmation")).to_contain_text("¥123.45")
    expect(admin_page.locator(".total-paid-out")).to_have_text("¥123.45")
    inmate.refresh_from_db()
    assert inmate.status == Inmate.Status.ACTIVE
    admin_page.get_by_label("Type the number of inmates to release").fill("1")
    admin_page.get_by_role("button", name="Yes, release them and pay out").click()

    expect(admin_page.locator(".messagelist")).to_contain_text(
        "Q-2024-0003 WuLei released; money paid out."
    )
    expect(admin_page.locator(".messagelist .error")).to_have_count(0)
    row = inmate_row(admin_page, "Q-2024-0003")
    expect(row.locator("td.field-status")).to_have_text("Released")
    expect(row.locator("td.field-spendable")).to_have_text("¥0.00")

    inmate.refresh_from_db()
    assert inmate.status == Inmate.Status.RELEASED
    assert inmate.released_at is not None
    accounts = {account.kind: account for account in inmate.ledger_accounts.all()}
    assert accounts[Account.Kind.SPENDABLE].balance_fen == 0
    assert accounts[Account.Kind.HELD].balance_fen == 0
    assert all(account.is_closed for account in accounts.values())
    payout = Transaction.objects.get(inmate=inmate, kind=Transaction.Kind.PAYOUT)
    legs = {
        entry.account.kind: entry.amount_fen
        for entry in Entry.objects.filter(transaction=payout).select_related("account")
    }
    assert legs == {Account.Kind.SPENDABLE: -12_345, Account.Kind.PAYOUTS: 12_345}


def test_transferring_an_inmate_moves_them_with_the_same_ledger_accounts(admin_page):
    old_facility = FacilityFactory(name="Qincheng")
    new_facility = FacilityFactory(name="Yancheng")
    inmate = InmateFactory(
        facility=old_facility, inmate_number="Q-2024-0004", surname="Chen", given_name="Jun"
    )
    give_money(inmate, 5_000)
    account_ids = set(inmate.ledger_accounts.values_list("id", flat=True))

    admin_page.goto(INMATE_LIST)
    run_action(admin_page, "Q-2024-0004", "Transfer selected inmates to another facility")
    expect(admin_page.get_by_role("heading", name="Transfer inmates")).to_be_visible()
    admin_page.get_by_label("To facility").select_option(label="Yancheng")
    admin_page.get_by_role("button", name="Show what will happen").click()
    expect(admin_page.locator("table.confirmation")).to_contain_text("¥50.00")
    inmate.refresh_from_db()
    assert inmate.facility_id == old_facility.pk
    admin_page.get_by_role("button", name="Yes, transfer them").click()

    expect(admin_page.locator(".messagelist")).to_contain_text("Q-2024-0004 ChenJun transferred.")
    expect(admin_page.locator(".messagelist .error")).to_have_count(0)
    expect(inmate_row(admin_page, "Q-2024-0004").locator("td.field-facility")).to_have_text(
        "Yancheng"
    )

    inmate.refresh_from_db()
    assert inmate.facility_id == new_facility.pk
    accounts = list(inmate.ledger_accounts.all())
    assert {account.id for account in accounts} == account_ids
    assert all(account.facility_id == new_facility.pk for account in accounts)
    spendable = next(a for a in accounts if a.kind == Account.Kind.SPENDABLE)
    assert spendable.balance_fen == 5_000
    assert spendable.balance_cap_fen == new_facility.balance_cap_fen


def test_the_journal_is_read_only_in_the_admin(admin_page):
    inmate = InmateFactory(inmate_number="Q-2024-0005")
    give_money(inmate, 2_000)
    deposit_transaction = Transaction.objects.get(inmate=inmate, kind=Transaction.Kind.DEPOSIT)
    entries_before = list(
        Entry.objects.filter(transaction=deposit_transaction).values_list(
            "account_id", "amount_fen"
        )
    )

    admin_page.goto("/admin/ledger/transaction/")
    expect(admin_page.get_by_role("heading", name="Select transaction to view")).to_be_visible()
    expect(admin_page.get_by_role("link", name="Add transaction")).to_have_count(0)
    admin_page.get_by_role("link", name=str(deposit_transaction.pk), exact=True).click()

    expect(admin_page.get_by_role("heading", name="View transaction")).to_be_visible()
    expect(admin_page.get_by_role("button", name=re.compile("Save"))).to_have_count(0)
    expect(admin_page.locator("#content-main [type=submit]")).to_have_count(0)
    expect(admin_page.get_by_role("link", name="Close")).to_be_visible()
    expect(admin_page.locator(".inline-group")).to_contain_text("¥20.00")

    # The add page itself is refused, not only hidden (the request carries the session).
    refused = admin_page.request.get("/admin/ledger/transaction/add/")
    assert refused.status == 403
    assert (
        list(
            Entry.objects.filter(transaction=deposit_transaction).values_list(
                "account_id", "amount_fen"
            )
        )
        == entries_before
    )
