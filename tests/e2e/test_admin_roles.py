"""Staff roles in a real browser: a trust officer asks for a credit and sees what will happen,
cannot approve it, and a second trust officer approves it; a clerk sees no money; a facility
administrator sees only their facility and types the count back to release, and a payout above
the threshold waits for a second trust officer; the language switcher turns the admin into
Chinese."""

import pytest
from playwright.sync_api import Page, expect

from facilities.models import Inmate
from ledger.models import StaffRequest, Transaction
from ledger.selectors import inmate_balance
from tests.admin.conftest import make_site
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.context.clear_cookies()


def test_a_credit_waits_for_a_second_trust_officer_and_then_posts(page, sign_in):
    site = make_site("alpha")
    requester, approver = site.staff["trust_officer"], site.staff["trust_officer_2"]

    sign_in(page, requester)
    page.goto(f"/admin/facilities/inmate/{site.inmate.pk}/change/")
    page.get_by_role("link", name="New money request").click()
    page.get_by_label("What should be done").select_option(label="Adjustment: credit")
    page.get_by_label("Amount").fill("1,234.50")
    page.get_by_label("Reason").fill("Kitchen wages for October")
    page.get_by_role("button", name="Show what will happen").click()
    preview = page.locator("table.preview")
    expect(preview).to_contain_text("¥0.00")
    expect(preview).to_contain_text("¥1,234.50")
    expect(page.locator(".approval-note")).to_contain_text("second trust officer")
    assert not StaffRequest.objects.exists()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".messagelist")).to_contain_text("waiting for a second trust officer")
    expect(page.get_by_role("button", name="Approve and execute")).to_have_count(0)
    staff_request = StaffRequest.objects.get()
    assert inmate_balance(inmate=site.inmate).spendable_fen == 0
    sign_out(page)

    sign_in(page, approver)
    page.goto(f"/admin/ledger/staffrequest/{staff_request.pk}/change/")
    page.get_by_role("button", name="Approve and execute").click()
    expect(page.locator(".messagelist")).to_contain_text(f"request #{staff_request.pk}")
    assert inmate_balance(inmate=site.inmate).spendable_fen == 123_450
    posted = Transaction.objects.get(kind=Transaction.Kind.ADJUSTMENT)
    assert (posted.created_by_id, posted.approved_by_id) == (requester.pk, approver.pk)


def test_a_clerk_sees_inmates_but_no_money(page, sign_in):
    site = make_site("alpha")
    sign_in(page, site.staff["clerk"])
    # The home page is the clerk's work queue; the model list is one click away.
    page.get_by_role("link", name="All screens").click()
    expect(page.get_by_role("link", name="Inmates", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Transactions")).to_have_count(0)
    refused = page.goto("/admin/ledger/transaction/")
    assert refused.status == 403
    page.goto("/admin/facilities/inmate/")
    expect(page.locator("select[name=action]")).to_have_count(0)


def test_a_facility_administrator_releases_two_after_typing_the_count(page, sign_in):
    site, other = make_site("alpha"), make_site("bravo")
    second = InmateFactory(facility=site.facility)
    deposit(site.inmate, 2_000)
    sign_in(page, site.staff["facility_admin"])
    page.goto("/admin/facilities/inmate/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#result_list")).not_to_contain_text(other.inmate.inmate_number)
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option(value="release_inmates")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".total-paid-out")).to_have_text("¥20.00")
    page.get_by_label("Type the number of inmates to release").fill("1")
    page.get_by_role("button", name="Yes, release them and pay out").click()
    expect(page.locator(".errorlist")).to_contain_text("type 2 to release them")
    assert Inmate.objects.filter(status="released").count() == 0
    page.get_by_label("Type the number of inmates to release").fill("2")
    page.get_by_role("button", name="Yes, release them and pay out").click()
    expect(page.locator(".messagelist")).to_contain_text("released; money paid out")
    assert set(Inmate.objects.filter(status="released").values_list("pk", flat=True)) == {
        site.inmate.pk,
        second.pk,
    }


def test_a_large_payout_in_the_release_action_waits_for_a_second_trust_officer(page, sign_in):
    site = make_site("alpha")
    large = InmateFactory(facility=site.facility)
    deposit(site.inmate, 2_000)
    deposit(large, 60_000)  # above the facility's 500.00 yuan threshold
    sign_in(page, site.staff["facility_admin"])
    page.goto("/admin/facilities/inmate/")
    page.locator("#action-toggle").check()
    page.locator("select[name=action]").select_option(value="release_inmates")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("td.release-now")).to_have_text("Released now")
    expect(page.locator("td.release-waits")).to_have_text("Waits for a second trust officer")
    expect(page.locator(".approval-note")).to_contain_text("second trust officer")
    page.get_by_label("Type the number of inmates to release").fill("2")
    page.get_by_label("Reason").fill("Sentence served")
    page.get_by_role("button", name="Yes, release them and pay out").click()
    expect(page.locator(".messagelist")).to_contain_text(
        "1 inmate released now. 1 release waits for a second trust officer."
    )
    assert set(Inmate.objects.filter(status="released").values_list("pk", flat=True)) == {
        site.inmate.pk
    }
    assert inmate_balance(inmate=large).spendable_fen == 60_000
    waiting = StaffRequest.objects.get(inmate=large, state=StaffRequest.State.REQUESTED)
    sign_out(page)

    sign_in(page, site.staff["trust_officer"])
    page.goto(f"/admin/ledger/staffrequest/{waiting.pk}/change/")
    page.get_by_role("button", name="Approve and execute").click()
    expect(page.locator(".messagelist")).to_contain_text(f"request #{waiting.pk}")
    large.refresh_from_db()
    assert large.status == Inmate.Status.RELEASED
    payout = Transaction.objects.get(kind=Transaction.Kind.PAYOUT, inmate=large)
    assert payout.approved_by_id == site.staff["trust_officer"].pk


def test_the_language_switcher_turns_the_admin_chinese(page, sign_in):
    site = make_site("alpha")
    sign_in(page, site.staff["auditor"])
    page.get_by_label("Language").select_option(value="zh-hans")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("button", name="切换", exact=True)).to_be_visible()
    page.goto("/admin/reports/dashboard/")
    expect(page.locator("#content")).to_contain_text("信托资金总额")
