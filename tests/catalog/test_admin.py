"""Commissary fulfilment in the admin: the pick list per housing unit, picked and delivered,
cancellation only after a confirmation with a reason, and the ID card with its QR code."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from catalog import services
from catalog.models import Order, Restriction
from commissary import errors
from facilities import services as facility_services
from facilities.models import Grade, Inmate
from ledger.models import Account
from tests.catalog.helpers import funded, product_at, stock_of
from tests.factories import FacilityFactory, HousingUnitFactory, InmateFactory, StaffFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:catalog_order_changelist")


@pytest.fixture
def shop():
    facility = FacilityFactory()
    units = [HousingUnitFactory(facility=facility, name=name) for name in ("Block A", "Block B")]
    device, _ = facility_services.register_kiosk_device(facility=facility, name="K")
    noodles = product_at(facility, price_fen=450, name_zh="方便面", name_en="Noodles")
    orders = []
    for n, unit in enumerate([units[0], units[0], units[1]]):
        inmate = funded(InmateFactory(facility=facility, housing_unit=unit), 10_000)
        orders.append(
            services.place_order(
                inmate_id=inmate.pk,
                device_id=device.pk,
                items=[{"product_id": noodles.pk, "quantity": n + 1}],
                idempotency_key=f"shop-{n}",
            )
        )
    return facility, orders, noodles


@pytest.fixture
def staff_client(client, shop):
    facility = shop[0]
    client.force_login(StaffFactory(facilities=[facility], is_superuser=True))
    return client


def _act(client, action, orders, **extra):
    return client.post(
        CHANGELIST,
        {"action": action, ACTION_CHECKBOX_NAME: [order.pk for order in orders], **extra},
    )


def test_the_pick_list_groups_placed_orders_by_housing_unit_with_totals(staff_client, shop):
    _, orders, _ = shop
    answer = _act(staff_client, "print_pick_list", orders)
    assert answer.status_code == 200
    units = answer.context["units"]
    assert [unit["name"] for unit in units] == ["Block A", "Block B"]
    assert [unit["totals"][0]["quantity"] for unit in units] == [3, 3]
    assert [len(unit["orders"]) for unit in units] == [2, 1]
    assert "方便面" in answer.content.decode()
    assert "style=" not in answer.content.decode().split('id="content"')[-1]


def test_picked_then_delivered_through_the_actions(staff_client, shop):
    _, orders, _ = shop
    _act(staff_client, "mark_picked", orders[:2])
    _act(staff_client, "mark_delivered", orders)  # the unpicked third is refused
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert [statuses[o.pk] for o in orders] == ["delivered", "delivered", "placed"]


def test_cancelling_asks_for_confirmation_and_a_reason_before_refunding(staff_client, shop):
    facility, orders, noodles = shop
    answer = _act(staff_client, "cancel_orders", orders[2:])
    assert answer.status_code == 200
    assert "admin/catalog/cancel_confirmation.html" in [t.name for t in answer.templates]
    assert Order.objects.get(pk=orders[2].pk).status == "placed"
    _act(staff_client, "cancel_orders", orders[2:], confirmed="yes", reason="")
    assert Order.objects.get(pk=orders[2].pk).status == "placed"
    _act(staff_client, "cancel_orders", orders[2:], confirmed="yes", reason="damaged")
    assert Order.objects.get(pk=orders[2].pk).status == "cancelled"
    inmate = orders[2].inmate
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 10_000
    assert stock_of(noodles, facility) == 100 - 3


def test_the_id_card_shows_the_card_token_as_a_qr_code(staff_client, shop):
    inmate = shop[1][0].inmate
    card = staff_client.get(reverse("admin:catalog_inmatecommissary_card", args=[inmate.pk]))
    assert card.status_code == 200
    assert inmate.inmate_number in card.content.decode()
    qr = staff_client.get(reverse("admin:catalog_inmatecommissary_card_qr", args=[inmate.pk]))
    assert qr.status_code == 200
    assert qr["Content-Type"] == "image/svg+xml"
    assert b"<svg" in qr.content and b"<path" in qr.content


def test_staff_of_another_facility_see_neither_orders_nor_cards(client, shop):
    _, orders, _ = shop
    outsider = StaffFactory(facilities=[FacilityFactory()])
    outsider.user_permissions.add(*Permission.objects.filter(content_type__app_label="catalog"))
    client.force_login(outsider)
    answer = client.get(CHANGELIST)
    assert answer.status_code == 200
    assert answer.context["cl"].result_count == 0
    inmate = orders[0].inmate
    card = client.get(reverse("admin:catalog_inmatecommissary_card", args=[inmate.pk]))
    assert card.status_code == 404


def test_staff_change_an_inmates_grade_and_only_the_grade(staff_client, shop):
    facility, orders, _ = shop
    inmate = orders[0].inmate
    grade = Grade.objects.create(facility=facility, name="一级", spending_limit_fen=80_000)
    Grade.objects.create(facility=FacilityFactory(), name="elsewhere", spending_limit_fen=1)
    url = reverse("admin:catalog_inmatecommissary_change", args=[inmate.pk])
    form = staff_client.get(url).context["adminform"].form
    assert list(form.fields["grade"].queryset) == [grade]
    Inmate.objects.filter(pk=inmate.pk).update(surname="Changed meanwhile")
    answer = staff_client.post(
        url,
        {
            "grade": grade.pk,
            "commissary_restrictions-TOTAL_FORMS": "0",
            "commissary_restrictions-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.content[:2000]
    inmate.refresh_from_db()
    assert (inmate.grade_id, inmate.surname) == (grade.pk, "Changed meanwhile")


def test_a_grade_of_another_facility_is_refused(shop):
    inmate = shop[1][0].inmate
    elsewhere = Grade.objects.create(facility=FacilityFactory(), name="x", spending_limit_fen=1)
    with pytest.raises(errors.ValidationFailed):
        facility_services.assign_grade(inmate_id=inmate.pk, grade_id=elsewhere.pk)
    inmate.refresh_from_db()
    assert inmate.grade_id is None


def test_staff_cannot_restrict_an_inmate_of_a_facility_not_theirs(client, shop):
    facility = shop[0]
    staff = StaffFactory(facilities=[facility])
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="catalog"))
    client.force_login(staff)
    outsider = InmateFactory(facility=FacilityFactory())
    answer = client.post(
        reverse("admin:catalog_restriction_add"),
        {
            "inmate": outsider.pk,
            "kind": "suspension",
            "ends_at_0": "2030-01-01",
            "ends_at_1": "00:00:00",
            "reason": "x",
        },
    )
    assert answer.status_code == 200  # the form comes back with an error
    assert "inmate" in answer.context["adminform"].form.errors
    assert not Restriction.objects.exists()


def test_a_product_price_is_typed_and_shown_in_yuan_and_stored_in_fen(client):
    noodles = product_at(FacilityFactory(), price_fen=450)
    url = reverse("admin:catalog_product_change", args=[noodles.pk])
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="price" value="4.50"' in page and "price_fen" not in page
    fields = {
        "sku": noodles.sku,
        "name_zh": noodles.name_zh,
        "name_en": noodles.name_en,
        "category": noodles.category_id,
        "is_active": "on",
        "max_per_order": "10",
        "offers-TOTAL_FORMS": "0",  # the stock inline, left as it is
        "offers-INITIAL_FORMS": "0",
    }
    # A new list price is a price change: it comes with the cost and a reason.
    change = {"price": "12.30", "cost": "10.00", "reason": "Supplier price"}
    assert client.post(url, {**fields, **change}).status_code == 302
    noodles.refresh_from_db()
    assert noodles.price_fen == 1_230
    refused = client.post(url, {**fields, **change, "price": "10,000,000.01"})
    assert refused.status_code == 200
    noodles.refresh_from_db()
    assert noodles.price_fen == 1_230


def test_a_grade_spending_limit_is_typed_in_yuan_and_empty_means_no_limit(client):
    facility = FacilityFactory()
    grade = Grade.objects.create(facility=facility, name="一级", spending_limit_fen=80_000)
    url = reverse("admin:facilities_grade_change", args=[grade.pk])
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'value="800.00"' in page and "消费限额" in page
    fields = {"facility": facility.pk, "name": "一级", "spending_period": "week"}
    assert client.post(url, {**fields, "spending_limit": "650.50"}).status_code == 302
    grade.refresh_from_db()
    assert (grade.spending_limit_fen, grade.spending_period) == (65_050, "week")
    assert client.post(url, {**fields, "spending_limit": ""}).status_code == 302
    grade.refresh_from_db()
    assert grade.spending_limit_fen is None


def test_an_order_page_shows_its_total_and_lines_in_yuan(client, shop):
    _facility, orders, _noodles = shop
    order = orders[1]  # two noodles at ¥4.50
    client.force_login(StaffFactory(is_superuser=True))
    url = reverse("admin:catalog_order_change", args=[order.pk])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "¥9.00" in page and "¥4.50" in page
    assert "total (fen)" not in page.lower() and "unit price fen" not in page.lower()


def test_who_imposed_a_restriction_and_when_are_recorded_not_typed(client, shop):
    facility = shop[0]
    inmate = InmateFactory(facility=facility)
    someone_else = StaffFactory(facilities=[facility])
    officer = StaffFactory(facilities=[facility], is_superuser=True)
    client.force_login(officer)
    url = reverse("admin:catalog_restriction_add")
    assert 'name="created_by"' not in client.get(url).content.decode()
    answer = client.post(
        url,
        {
            "inmate": inmate.pk,
            "kind": "suspension",
            "ends_at_0": "2030-01-01",
            "ends_at_1": "00:00:00",
            "reason": "fight",
            "created_by": someone_else.pk,
            "created_at_0": "2020-01-01",
            "created_at_1": "00:00:00",
        },
    )
    assert answer.status_code == 302
    restriction = Restriction.objects.get(inmate=inmate)
    assert restriction.created_by == officer
    assert restriction.created_at.year != 2020


def test_a_restriction_added_on_the_inmates_commissary_page_records_who_imposed_it(client, shop):
    facility = shop[0]
    inmate = InmateFactory(facility=facility)
    officer = StaffFactory(facilities=[facility], is_superuser=True)
    client.force_login(officer)
    url = reverse("admin:catalog_inmatecommissary_change", args=[inmate.pk])
    prefix = "commissary_restrictions"
    answer = client.post(
        url,
        {
            "grade": "",
            f"{prefix}-TOTAL_FORMS": "1",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-0-kind": "suspension",
            f"{prefix}-0-ends_at_0": "2030-01-01",
            f"{prefix}-0-ends_at_1": "00:00:00",
            f"{prefix}-0-reason": "fight",
        },
    )
    assert answer.status_code == 302
    assert Restriction.objects.get(inmate=inmate).created_by == officer
