"""A staff member of facility A gets nothing of facility B through any admin URL: lists,
detail pages by id, search, filters, autocomplete, actions, custom views and reports. An object
outside the scope answers exactly as a missing one does (404)."""

import pytest

from facilities.models import Inmate
from ledger import services
from ledger.models import Account, StaffRequest, Transaction
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db

ROLES_THAT_SEE_INMATES = ("facility_admin", "trust_officer", "clerk", "auditor")


@pytest.fixture
def b_money(site_b):
    """Facility B's inmate with a credited deposit, a staff request and an adjustment."""
    deposit(site_b.inmate, 30_000)
    waiting = services.request_money_action(
        kind=StaffRequest.Kind.CREDIT,
        inmate_id=site_b.inmate.pk,
        amount_fen=100,
        reason="B only",
        staff_id=site_b.staff["trust_officer"].pk,
    )
    return {
        "request": waiting,
        "transaction": Transaction.objects.filter(inmate=site_b.inmate).first(),
        "account": Account.objects.get(inmate=site_b.inmate, kind="spendable"),
        "deposit": site_b.inmate.deposits.first(),
    }


@pytest.mark.parametrize("role", ROLES_THAT_SEE_INMATES)
def test_lists_and_search_show_only_the_staff_member_s_facility(client, site_a, site_b, role):
    client.force_login(site_a.staff[role])
    listing = client.get("/admin/facilities/inmate/").content.decode()
    assert site_a.inmate.inmate_number in listing
    assert site_b.inmate.inmate_number not in listing
    assert site_b.facility.name not in listing  # not even in the facility filter
    found = client.get("/admin/facilities/inmate/", {"q": site_b.inmate.inmate_number})
    assert site_b.inmate.surname not in found.content.decode()


@pytest.mark.parametrize("role", ROLES_THAT_SEE_INMATES)
def test_another_facility_s_inmate_by_id_is_a_404_like_a_missing_one(client, site_a, site_b, role):
    client.force_login(site_a.staff[role])
    assert client.get(f"/admin/facilities/inmate/{site_a.inmate.pk}/change/").status_code == 200
    assert client.get(f"/admin/facilities/inmate/{site_b.inmate.pk}/change/").status_code == 404
    assert client.get("/admin/facilities/inmate/999999999/change/").status_code == 404
    assert client.get(f"/admin/facilities/inmate/{site_b.inmate.pk}/history/").status_code == 404
    assert client.get(f"/admin/facilities/facility/{site_b.facility.pk}/change/").status_code == 404


@pytest.mark.parametrize("role", ("facility_admin", "trust_officer", "auditor"))
def test_another_facility_s_money_by_id_is_a_404(client, site_a, site_b, b_money, role):
    client.force_login(site_a.staff[role])
    urls = [
        f"/admin/ledger/account/{b_money['account'].pk}/change/",
        f"/admin/ledger/transaction/{b_money['transaction'].pk}/change/",
        f"/admin/ledger/deposit/{b_money['deposit'].pk}/change/",
        f"/admin/ledger/staffrequest/{b_money['request'].pk}/change/",
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    for listing in ("account", "transaction", "deposit", "staffrequest", "monthlyperiod"):
        page = client.get(f"/admin/ledger/{listing}/").content.decode()
        assert site_b.inmate.inmate_number not in page, listing


def test_autocomplete_offers_only_the_staff_member_s_inmates(client, site_a, site_b):
    client.force_login(site_a.staff["trust_officer"])
    answer = client.get(
        "/admin/autocomplete/",
        {"app_label": "ledger", "model_name": "staffrequest", "field_name": "inmate", "term": ""},
    )
    assert answer.status_code == 200
    ids = {int(result["id"]) for result in answer.json()["results"]}
    assert site_a.inmate.pk in ids and site_b.inmate.pk not in ids


def test_an_action_on_another_facility_s_inmate_does_nothing(client, site_a, site_b):
    deposit(site_b.inmate, 10_000)
    client.force_login(site_a.staff["facility_admin"])
    client.post(
        "/admin/facilities/inmate/",
        {
            "action": "release_inmates",
            "_selected_action": [site_b.inmate.pk],
            "confirm_count": "1",
            "request_key": "6f1d1c36-6c57-4d3e-8a53-0a6f0bd43b8e",
        },
    )
    site_b.inmate.refresh_from_db()
    assert site_b.inmate.status == Inmate.Status.ACTIVE


def test_approving_another_facility_s_request_is_a_404_and_moves_nothing(
    client, site_a, site_b, b_money, ledger_snapshot
):
    before = ledger_snapshot()
    client.force_login(site_a.staff["trust_officer"])
    answer = client.post(
        f"/admin/ledger/staffrequest/{b_money['request'].pk}/decide/", {"decision": "approve"}
    )
    assert answer.status_code == 404
    assert ledger_snapshot() == before
    b_money["request"].refresh_from_db()
    assert b_money["request"].state == StaffRequest.State.REQUESTED


def test_a_money_request_for_another_facility_s_inmate_is_refused(client, site_a, site_b):
    client.force_login(site_a.staff["trust_officer"])
    client.post(
        "/admin/ledger/staffrequest/add/",
        {
            "inmate": site_b.inmate.pk,
            "kind": "hold",
            "amount": "1.00",
            "reason": "x",
            "confirm": "1",
        },
    )
    assert not StaffRequest.objects.filter(inmate=site_b.inmate).exists()


def test_dashboard_and_reports_of_another_facility_are_404(client, site_a, site_b):
    client.force_login(site_a.staff["auditor"])
    assert client.get("/admin/reports/dashboard/").status_code == 200
    assert (
        client.get("/admin/reports/dashboard/", {"facility": site_b.facility.pk}).status_code == 404
    )
    for slug in ("deposits", "balances", "caps", "fees"):
        csv = client.get(
            f"/admin/reports/{slug}/", {"facility": site_b.facility.pk, "format": "csv"}
        )
        assert csv.status_code == 404, slug


def test_the_housing_unit_and_kiosk_choices_are_the_staff_member_s(client, site_a, site_b):
    from tests.factories import HousingUnitFactory

    HousingUnitFactory(facility=site_b.facility, name="B block")
    client.force_login(site_a.staff["facility_admin"])
    page = client.get("/admin/facilities/inmate/add/").content.decode()
    assert site_a.facility.name in page
    assert site_b.facility.name not in page and "B block" not in page


@pytest.mark.parametrize("listing", ("transaction", "deposit"))
def test_exports_carry_only_the_staff_member_s_facility(client, site_a, site_b, listing):
    deposit(site_a.inmate, 1_111)
    deposit(site_b.inmate, 2_222)
    client.force_login(site_a.staff["auditor"])
    answer = client.get(f"/admin/ledger/{listing}/export/")
    text = answer.content.decode("utf-8-sig")
    assert answer.status_code == 200 and "11.11" in text
    assert "22.22" not in text and site_b.inmate.inmate_number not in text


def test_a_clerk_cannot_export_the_journal(client, site_a):
    client.force_login(site_a.staff["clerk"])
    assert client.get("/admin/ledger/transaction/export/").status_code == 403


def test_the_audit_trail_filters_by_facility(client, site_a, site_b):
    from tests.factories import StaffFactory

    superuser = StaffFactory(is_superuser=True)
    for site in (site_a, site_b):
        client.force_login(site.staff["facility_admin"])
        client.post(
            f"/admin/facilities/inmate/{site.inmate.pk}/change/",
            {"surname": "Renamed", "given_name": "", "housing_unit": ""},
        )
    client.force_login(superuser)
    listed = (
        client.get("/admin/auditlog/logentry/", {"facility": site_b.facility.pk})
        .context["cl"]
        .result_list
    )
    assert listed and {entry.additional_data["facility_id"] for entry in listed} == {
        site_b.facility.pk
    }


def test_another_facility_s_statement_download_is_a_404(client, site_a, site_b):
    import datetime as dt

    from django.utils import timezone

    from ledger.models import Statement

    def statement(site):
        return Statement.objects.create(
            inmate=site.inmate,
            facility=site.facility,
            month=dt.date(2026, 1, 1),
            opening_fen=0,
            closing_fen=0,
            html="<p>statement</p>",
            pdf=b"%PDF",
            created_at=timezone.now(),
        )

    mine, theirs = statement(site_a), statement(site_b)
    client.force_login(site_a.staff["auditor"])
    assert client.get(f"/admin/ledger/statement/{mine.pk}/download.html").status_code == 200
    assert client.get(f"/admin/ledger/statement/{theirs.pk}/download.html").status_code == 404


def test_a_raw_id_label_never_names_another_facility_s_inmate(client, site_a, site_b):
    client.force_login(site_a.staff["clerk"])
    theirs = client.get("/admin/catalog/restriction/add/", {"inmate": site_b.inmate.pk})
    assert theirs.status_code == 200
    page = theirs.content.decode()
    assert site_b.inmate.surname not in page and site_b.inmate.inmate_number not in page
    mine = client.get("/admin/catalog/restriction/add/", {"inmate": site_a.inmate.pk})
    assert site_a.inmate.surname in mine.content.decode()


def test_the_order_list_s_housing_unit_filter_offers_only_the_staff_member_s_units(
    client, site_a, site_b
):
    from django.utils import timezone

    from catalog.models import Order
    from tests.factories import HousingUnitFactory

    unit_a = HousingUnitFactory(facility=site_a.facility, name="Alpha block")
    unit_b = HousingUnitFactory(facility=site_b.facility, name="Bravo block")
    for site, unit in ((site_a, unit_a), (site_b, unit_b)):
        site.inmate.housing_unit = unit
        site.inmate.save(update_fields=["housing_unit"])
        Order.objects.create(
            facility=site.facility,
            inmate=site.inmate,
            total_fen=100,
            currency="CNY",
            idempotency_scope="test",
            idempotency_key=f"scope-{site.facility.code}",
            request_hash="x",
            created_at=timezone.now(),
        )
    client.force_login(site_a.staff["clerk"])
    page = client.get("/admin/catalog/order/").content.decode()
    assert "Alpha block" in page
    assert "Bravo block" not in page and site_b.facility.name not in page


def test_a_clerk_can_create_a_product_and_a_restriction(client, site_a):
    from catalog.models import Category, Product, Restriction

    category = Category.objects.create(code="soap", name_zh="洗护", name_en="Toiletries")
    clerk = site_a.staff["clerk"]
    client.force_login(clerk)
    form = client.get("/admin/catalog/product/add/").content.decode()
    assert f'<option value="{category.pk}"' in form
    answer = client.post(
        "/admin/catalog/product/add/",
        {
            "sku": "SOAP-1",
            "name_zh": "肥皂",
            "name_en": "Soap",
            "category": category.pk,
            "price": "3.50",
            "cost": "3.00",
            "is_active": "on",
            "max_per_order": "5",
            "offers-TOTAL_FORMS": "0",
            "offers-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    product = Product.objects.get(sku="SOAP-1")
    assert product.price_fen == 350
    restriction_form = client.get("/admin/catalog/restriction/add/").content.decode()
    assert f'<option value="{product.pk}"' in restriction_form
    answer = client.post(
        "/admin/catalog/restriction/add/",
        {"inmate": site_a.inmate.pk, "kind": "product", "product": product.pk, "reason": "Rule"},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert Restriction.objects.get(inmate=site_a.inmate).created_by == clerk
