"""The money request screens: the request shows what will happen before it is confirmed; the
requester sees no approve button and cannot approve by posting; a second trust officer of
the facility approves; a rejection moves nothing. Amounts are typed in yuan."""

import pytest

from ledger.models import StaffRequest
from ledger.selectors import inmate_balance
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db

ADD = "/admin/ledger/staffrequest/add/"


def ask(client, site, **fields):
    return client.post(
        ADD,
        {"inmate": site.inmate.pk, "kind": "credit", "amount": "1,234.50", "reason": "Wages"}
        | fields,
    )


def test_the_request_page_shows_the_money_after_before_anything_is_recorded(client, site_a):
    deposit(site_a.inmate, 10_000)
    client.force_login(site_a.staff["trust_officer"])
    preview = ask(client, site_a, preview="1").content.decode()
    assert "¥100.00" in preview and "¥1,334.50" in preview  # spendable now and after
    assert "second trust officer" in preview
    assert not StaffRequest.objects.exists()


def test_a_typed_amount_that_is_not_yuan_is_a_sentence_not_a_crash(client, site_a):
    client.force_login(site_a.staff["trust_officer"])
    page = ask(client, site_a, amount="12.345", preview="1")
    assert page.status_code == 200
    assert "Type an amount in yuan" in page.content.decode()


def test_the_requester_cannot_approve_and_a_second_trust_officer_can(client, site_a):
    client.force_login(site_a.staff["trust_officer"])
    ask(client, site_a, confirm="1")
    staff_request = StaffRequest.objects.get()
    assert staff_request.amount_fen == 123_450 and staff_request.state == "requested"
    own_page = client.get(f"/admin/ledger/staffrequest/{staff_request.pk}/change/")
    assert "Approve and execute" not in own_page.content.decode()
    client.post(f"/admin/ledger/staffrequest/{staff_request.pk}/decide/", {"decision": "approve"})
    assert inmate_balance(inmate=site_a.inmate).spendable_fen == 0

    client.force_login(site_a.staff["trust_officer_2"])
    page = client.get(f"/admin/ledger/staffrequest/{staff_request.pk}/change/")
    assert "Approve and execute" in page.content.decode()
    client.post(f"/admin/ledger/staffrequest/{staff_request.pk}/decide/", {"decision": "approve"})
    assert inmate_balance(inmate=site_a.inmate).spendable_fen == 123_450
    staff_request.refresh_from_db()
    assert staff_request.state == "executed"
    assert staff_request.transaction.approved_by == site_a.staff["trust_officer_2"]


def test_a_rejected_request_moves_nothing(client, site_a, ledger_snapshot):
    client.force_login(site_a.staff["trust_officer"])
    ask(client, site_a, confirm="1")
    before = ledger_snapshot()
    client.force_login(site_a.staff["trust_officer_2"])
    staff_request = StaffRequest.objects.get()
    client.post(
        f"/admin/ledger/staffrequest/{staff_request.pk}/decide/",
        {"decision": "reject", "decision_note": "Not earned"},
    )
    staff_request.refresh_from_db()
    assert staff_request.state == "rejected" and staff_request.decision_note == "Not earned"
    assert ledger_snapshot() == before


def test_a_refused_request_reads_as_a_sentence(client, site_a):
    client.force_login(site_a.staff["trust_officer"])
    page = ask(client, site_a, kind="hold", amount="5.00", confirm="1").content.decode()
    assert "spendable balance is too low" in page
    assert not StaffRequest.objects.exists()


def test_the_journal_lists_amounts_and_accounts_newest_first(client, site_a):
    deposit(site_a.inmate, 1_000)
    deposit(site_a.inmate, 2_000)
    client.force_login(site_a.staff["auditor"])
    page = client.get("/admin/ledger/transaction/").content.decode()
    assert page.index("¥20.00") < page.index("¥10.00")
    assert "→" in page and "spendable" in page


def test_the_inmate_page_links_its_money_records_and_shows_the_month(client, site_a):
    deposit(site_a.inmate, 5_000)
    client.force_login(site_a.staff["trust_officer"])
    page = client.get(f"/admin/facilities/inmate/{site_a.inmate.pk}/change/").content.decode()
    assert f"/admin/ledger/transaction/?inmate__id__exact={site_a.inmate.pk}" in page
    assert f"/admin/ledger/deposit/?inmate__id__exact={site_a.inmate.pk}" in page
    assert "this month received ¥50.00 of ¥1,000.00" in page
    listing = client.get(f"/admin/ledger/transaction/?inmate__id__exact={site_a.inmate.pk}")
    assert listing.status_code == 200 and "¥50.00" in listing.content.decode()
