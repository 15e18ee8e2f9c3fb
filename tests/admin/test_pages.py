"""What staff see on the admin pages: links they can follow, fields they can use, amounts in
yuan."""

import pytest

from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def test_the_dashboard_and_reports_are_linked_only_for_staff_who_may_open_them(client, site_a):
    client.force_login(site_a.staff["clerk"])
    clerk_index = client.get("/admin/").content.decode()
    assert "/admin/reports/dashboard/" not in clerk_index
    assert client.get("/admin/reports/dashboard/").status_code == 403

    client.force_login(site_a.staff["auditor"])
    auditor_index = client.get("/admin/").content.decode()
    assert "/admin/reports/dashboard/" in auditor_index and "/admin/reports/" in auditor_index
    assert client.get("/admin/reports/dashboard/").status_code == 200


def test_staff_who_may_only_view_an_inmate_see_no_pin_row(client, site_a):
    url = f"/admin/facilities/inmate/{site_a.inmate.pk}/change/"
    client.force_login(site_a.staff["trust_officer"])
    view_only = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "New PIN" not in view_only and "New pin" not in view_only
    assert "Surname" in view_only

    client.force_login(site_a.staff["facility_admin"])
    editable = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="new_pin"' in editable


def test_saving_a_facility_keeps_its_caps_which_the_form_shows_but_does_not_change(client, site_a):
    facility = site_a.facility
    caps_fen = (facility.monthly_cap_fen, facility.balance_cap_fen)
    client.force_login(StaffFactory(is_superuser=True))
    page = client.post(
        f"/admin/facilities/facility/{facility.pk}/change/",
        {
            "name": "Renamed prison",
            "timezone": facility.timezone,
            "deposit_fee_rate_bp": "0",
            "links_need_approval": "on",
            "trust_alert_emails": "",
            "deposit_fee_fixed": "0.00",
            "adjustment_approval_threshold": "500.00",
        },
    )
    assert page.status_code == 302
    facility.refresh_from_db()
    assert facility.name == "Renamed prison"
    assert (facility.monthly_cap_fen, facility.balance_cap_fen) == caps_fen


def facility_policy(facility, **changes):
    return {
        "name": facility.name,
        "timezone": facility.timezone,
        "deposit_fee_rate_bp": "0",
        "links_need_approval": "on",
        "trust_alert_emails": "",
        "deposit_fee_fixed": "0.00",
        "adjustment_approval_threshold": "500.00",
        "max_deposit": "",
        "max_deposits_per_month": "",
        **changes,
    }


def approve_policy_change(approver):
    """The deposit limits are money policy: the form files a request, which another
    administrator (here a second superuser) approves before anything is stored."""
    from ledger import services as ledger_services
    from ledger.models import StaffRequest

    waiting = StaffRequest.objects.get(
        kind=StaffRequest.Kind.POLICY_CHANGE, state=StaffRequest.State.REQUESTED
    )
    ledger_services.approve_request(staff_request_id=waiting.pk, approver_id=approver.pk)


def test_the_largest_single_deposit_is_typed_and_shown_in_yuan_and_stored_in_fen(client, site_a):
    facility = site_a.facility
    url = f"/admin/facilities/facility/{facility.pk}/change/"
    client.force_login(StaffFactory(is_superuser=True))
    second = StaffFactory(is_superuser=True)
    saved = client.post(
        url,
        facility_policy(
            facility,
            max_deposit="1,234.50",
            max_deposits_per_month="4",
            policy_change_reason="New limits",
        ),
    )
    assert saved.status_code == 302
    facility.refresh_from_db()
    assert (facility.max_deposit_fen, facility.max_deposits_per_month) == (None, None)
    approve_policy_change(second)
    facility.refresh_from_db()
    assert (facility.max_deposit_fen, facility.max_deposits_per_month) == (123_450, 4)
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'value="1,234.50"' in page and "Largest single deposit" in page
    assert "Deposit fee rate (basis points)" in page and "Deposit fee rate bp" not in page
    assert "max deposit fen" not in page.lower()
    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "单笔汇款上限" in chinese and "每名在押人员每月最多收款次数" in chinese

    cleared = client.post(url, facility_policy(facility, policy_change_reason="No limits"))
    assert cleared.status_code == 302
    approve_policy_change(second)
    facility.refresh_from_db()
    assert (facility.max_deposit_fen, facility.max_deposits_per_month) == (None, None)


def test_the_audit_trail_and_sign_in_records_are_named_in_chinese_on_the_model_list(client):
    client.force_login(StaffFactory(is_superuser=True))
    index = client.get("/admin/models/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "审计日志" in index and "登录尝试记录" in index
    assert "Audit log" not in index and "Access attempts" not in index


def test_staff_who_may_only_view_a_facility_see_its_amounts_in_yuan(client, site_a):
    facility = site_a.facility
    facility.max_deposit_fen = 20_000
    facility.deposit_fee_fixed_fen = 150
    facility.save()
    client.force_login(site_a.staff["auditor"])
    page = client.get(
        f"/admin/facilities/facility/{facility.pk}/change/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "¥200.00" in page and "¥1.50" in page and "¥500.00" in page
    assert "None" not in page


def test_the_scheduled_runs_page_has_no_inline_style_and_reads_in_chinese(client):
    """The strict CSP (style-src 'self') blocks style attributes."""
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get("/admin/ledger/scheduledrun/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = page.content.decode()
    assert " style=" not in text
    assert "立即对账" in text and "Run reconciliation now" not in text


def test_a_deposits_view_page_shows_its_amount_and_fee_in_yuan(client, site_a):
    from tests.ledger.helpers import deposit

    credited = deposit(site_a.inmate, 12_345)
    client.force_login(site_a.staff["auditor"])
    page = client.get(
        f"/admin/ledger/deposit/{credited.pk}/change/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "¥123.45" in page
    assert "Amount fen" not in page and "12345" not in page


def test_a_deposits_provider_is_named_in_the_readers_language_not_by_its_code(client, site_a):
    from tests.ledger.helpers import deposit

    credited = deposit(site_a.inmate, 12_345)  # through the sandbox
    client.force_login(site_a.staff["auditor"])
    zh = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    listing = client.get("/admin/ledger/deposit/", **zh).content.decode()
    assert listing.count("沙箱（测试支付）") == 2  # the column and the filter
    assert ">sandbox<" not in listing
    only_sandbox = client.get("/admin/ledger/deposit/", {"provider": "sandbox"}, **zh)
    assert list(only_sandbox.context["cl"].result_list) == [credited]
    view = client.get(f"/admin/ledger/deposit/{credited.pk}/change/", **zh).content.decode()
    assert "沙箱（测试支付）" in view and ">sandbox<" not in view
    report = client.get(
        "/admin/reports/deposits/", {"facility": site_a.facility.pk}, **zh
    ).content.decode()
    assert "沙箱（测试支付）" in report and ">sandbox<" not in report
    english = client.get("/admin/ledger/deposit/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Sandbox (test payments)" in english
