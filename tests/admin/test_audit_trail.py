"""Every staff action that changes something is in the audit trail with who, when, the
facility and the values before and after; so are sign-ins (staff and family, failed ones too),
a depositor's data download and account closing, and each roster import (one summary entry
with the counts and the file's SHA-256, since its rows are bulk-inserted)."""

import hashlib

import pytest
from auditlog.models import LogEntry
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import audit
from accounts.models import DepositorBlock, DepositorLink, User
from catalog import services as catalog_services
from catalog.models import Order, Restriction
from facilities import services as facility_services
from facilities.models import Facility
from tests.catalog.helpers import funded, product_at
from tests.factories import StaffFactory
from tests.payments.helpers import PASSWORD, depositor

pytestmark = pytest.mark.django_db


def entries(model, pk=None, **filters):
    found = LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model))
    if pk is not None:
        found = found.filter(object_pk=str(pk))
    return found.filter(**filters).order_by("timestamp", "pk")


def event_entries(event):
    return LogEntry.objects.filter(additional_data__event=event).order_by("pk")


@pytest.fixture
def pending_link(site_a):
    return DepositorLink.objects.create(
        depositor=depositor(),
        inmate=site_a.inmate,
        entered_inmate_number=site_a.inmate.inmate_number,
        entered_surname=site_a.inmate.surname,
    )


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_a_link_decision_is_recorded_with_the_reason(client, site_a, pending_link, status):
    officer = site_a.staff["trust_officer"]
    client.force_login(officer)
    answer = client.post(
        f"/admin/accounts/depositorlink/{pending_link.pk}/change/",
        {"status": status, "decision_reason": "Checked the visitor list"},
    )
    assert answer.status_code == 302
    entry = entries(DepositorLink, pending_link.pk).last()
    assert entry.actor == officer
    assert entry.additional_data["facility_id"] == site_a.facility.pk
    assert entry.changes["status"] == ["pending", status]
    assert entry.changes["decision_reason"] == ["", "Checked the visitor list"]


def test_a_link_decision_made_by_a_service_names_the_staff_member(site_a, pending_link):
    from family import services as family_services

    officer = site_a.staff["trust_officer"]
    family_services.decide_link(
        link_id=pending_link.pk, status="rejected", staff=officer, reason="Unknown"
    )
    entry = entries(DepositorLink, pending_link.pk).last()
    assert entry.actor == officer and entry.changes["status"] == ["pending", "rejected"]


def test_blocking_a_depositor_is_recorded_with_the_reason(client, site_a, pending_link):
    officer = StaffFactory(facilities=[site_a.facility], is_superuser=True)
    client.force_login(officer)
    client.post(
        "/admin/accounts/depositorblock/add/",
        {
            "depositor": pending_link.depositor_id,
            "facility": site_a.facility.pk,
            "reason": "Threatened staff",
        },
    )
    block = DepositorBlock.objects.get()
    entry = entries(DepositorBlock, block.pk).get()
    assert entry.action == LogEntry.Action.CREATE and entry.actor == officer
    assert entry.additional_data["facility_id"] == site_a.facility.pk
    assert entry.changes["reason"][1] == "Threatened staff"


@pytest.fixture
def placed_order(site_a):
    device, _ = facility_services.register_kiosk_device(facility=site_a.facility, name="K")
    product = product_at(site_a.facility, price_fen=450)
    funded(site_a.inmate, 10_000)
    return catalog_services.place_order(
        inmate_id=site_a.inmate.pk,
        device_id=device.pk,
        items=[{"product_id": product.pk, "quantity": 2}],
        idempotency_key="audit-order",
    )


def _act(client, action, order, **extra):
    return client.post(
        "/admin/catalog/order/", {"action": action, ACTION_CHECKBOX_NAME: [order.pk], **extra}
    )


def test_picking_and_delivering_an_order_are_recorded(client, site_a, placed_order):
    clerk = site_a.staff["clerk"]
    client.force_login(clerk)
    _act(client, "mark_picked", placed_order)
    _act(client, "mark_delivered", placed_order)
    picked, delivered = entries(Order, placed_order.pk)
    assert picked.changes["status"] == ["placed", "picked"]
    assert delivered.changes["status"] == ["picked", "delivered"]
    for entry in (picked, delivered):
        assert entry.actor == clerk
        assert entry.additional_data["facility_id"] == site_a.facility.pk


def test_cancelling_an_order_is_recorded_with_the_reason_and_the_refund(
    client, site_a, placed_order
):
    clerk = site_a.staff["clerk"]
    client.force_login(clerk)
    _act(client, "cancel_orders", placed_order, confirmed="yes", reason="Damaged")
    entry = entries(Order, placed_order.pk).get()
    assert entry.actor == clerk and entry.additional_data["facility_id"] == site_a.facility.pk
    assert entry.changes["status"] == ["placed", "cancelled"]
    assert entry.changes["cancel_reason"] == ["", "Damaged"]
    assert entry.changes["refunded_fen"] == [0, 900]


def test_a_restriction_is_recorded(client, site_a):
    officer = site_a.staff["clerk"]
    client.force_login(officer)
    answer = client.post(
        "/admin/catalog/restriction/add/",
        {
            "inmate": site_a.inmate.pk,
            "kind": "suspension",
            "ends_at_0": "2030-01-01",
            "ends_at_1": "00:00:00",
            "reason": "Fight",
        },
    )
    assert answer.status_code == 302
    restriction = Restriction.objects.get()
    entry = entries(Restriction, restriction.pk).get()
    assert entry.action == LogEntry.Action.CREATE and entry.actor == officer
    assert entry.additional_data["facility_id"] == site_a.facility.pk
    assert entry.changes["reason"][1] == "Fight"


def test_a_grade_assignment_is_recorded(client, site_a):
    from tests.catalog.helpers import grade_at

    grade = grade_at(site_a.facility, limit_fen=45_000)
    clerk = site_a.staff["clerk"]
    facility_services.assign_grade(inmate_id=site_a.inmate.pk, grade_id=None)
    client.force_login(clerk)
    with audit.acting_as(clerk):
        facility_services.assign_grade(inmate_id=site_a.inmate.pk, grade_id=grade.pk)
    entry = entries(type(site_a.inmate), site_a.inmate.pk).last()
    assert entry.actor == clerk and entry.changes["grade"][1] == grade.pk
    assert entry.additional_data["facility_id"] == site_a.facility.pk


def test_a_roster_import_is_one_summary_entry_with_counts_and_the_file_s_checksum(client, site_a):
    admin = site_a.staff["facility_admin"]
    client.force_login(admin)
    roster = (
        b"facility,inmate_number,surname,given_name,housing_unit\n"
        b"alpha,R-1,Li,Wei,\nalpha,R-2,Wang,,\nalpha,R-3,Zhao,,\n"
    )
    page = client.post(
        "/admin/facilities/inmate/import/",
        {
            "import_file": SimpleUploadedFile("roster.csv", roster, "text/csv"),
            "format": "0",
            "resource": "0",
        },
    )
    assert not event_entries(audit.ROSTER_IMPORT).exists()  # the preview writes nothing
    client.post("/admin/facilities/inmate/process_import/", page.context["confirm_form"].initial)
    entry = event_entries(audit.ROSTER_IMPORT).get()
    assert entry.actor == admin
    assert entry.content_type.model_class() is Facility
    assert entry.additional_data["facility_id"] == site_a.facility.pk
    assert entry.additional_data["sha256"] == hashlib.sha256(roster).hexdigest()
    assert entry.additional_data["rows"] == 3 and entry.changes["admitted"] == [0, 3]
    assert entry.additional_data["file_name"] == "roster.csv"
    # One entry, not one per inmate.
    assert not entries(type(site_a.inmate), object_repr__contains="R-").exists()


def test_a_staff_sign_in_and_a_failed_one_are_recorded(client, site_a):
    clerk = site_a.staff["clerk"]
    client.post("/admin/login/", {"username": clerk.username, "password": "wrong"})
    client.post("/admin/login/", {"username": clerk.username, "password": "correct horse battery"})
    failed = event_entries(audit.FAILED_SIGN_IN).get()
    signed_in = event_entries(audit.SIGN_IN).get()
    assert signed_in.actor == clerk and signed_in.remote_addr == "127.0.0.1"
    for entry in (failed, signed_in):
        assert entry.object_pk == str(clerk.pk)
        assert entry.additional_data["facility_id"] == site_a.facility.pk


def test_a_lockout_is_recorded(client, site_a, settings):
    clerk = site_a.staff["clerk"]
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": clerk.username, "password": "wrong"})
    locked = event_entries(audit.LOCKED_OUT).get()
    assert locked.object_pk == str(clerk.pk) and locked.remote_addr == "127.0.0.1"
    assert locked.additional_data["facility_id"] == site_a.facility.pk


def test_a_family_sign_in_and_a_failed_one_are_recorded_for_the_linked_facility(
    client, site_a, pending_link
):
    family = pending_link.depositor
    client.post("/accounts/login/", {"login": family.email, "password": "wrong"})
    client.post("/accounts/login/", {"login": family.email, "password": PASSWORD})
    signed_in = event_entries(audit.SIGN_IN).get()
    assert signed_in.actor == family
    assert signed_in.additional_data["facility_id"] == site_a.facility.pk
    failed = event_entries(audit.FAILED_SIGN_IN).get()
    assert failed.object_pk == str(family.pk)
    assert failed.additional_data["facility_id"] == site_a.facility.pk


def test_a_depositor_s_data_download_is_recorded(client, site_a, pending_link):
    family = pending_link.depositor
    client.force_login(family)
    assert client.get("/family/account/data.json").status_code == 200
    entry = event_entries(audit.EXPORT).get()
    assert entry.actor == family and entry.object_pk == str(family.pk)
    assert entry.additional_data["facility_id"] == site_a.facility.pk


def test_a_depositor_closing_their_account_is_recorded_and_their_entries_kept(
    client, site_a, pending_link
):
    family = pending_link.depositor
    client.force_login(family)
    client.get("/family/account/data.json")
    answer = client.post("/family/account/", {"password": PASSWORD, "understood": "on"})
    assert answer.status_code == 302
    assert not User.objects.filter(pk=family.pk).exists()
    closed = event_entries(audit.ACCOUNT_CLOSED).get()
    assert closed.object_pk == str(family.pk) and closed.actor_email == family.email
    assert closed.additional_data["facility_id"] == site_a.facility.pk
    exported = event_entries(audit.EXPORT).get()  # kept, its actor cleared, its email kept
    assert exported.actor_id is None and exported.actor_email == family.email


def test_a_clerk_correcting_a_facility_s_stock_is_recorded(client, site_a):
    from catalog.models import FacilityProduct

    product = product_at(site_a.facility, price_fen=450)
    offer = FacilityProduct.objects.get(product=product, facility=site_a.facility)
    clerk = site_a.staff["clerk"]
    client.force_login(clerk)
    answer = client.post(
        f"/admin/catalog/facilityproduct/{offer.pk}/change/",
        {
            "facility": site_a.facility.pk,
            "product": product.pk,
            "is_available": "",
            "stock": offer.stock + 10,
        },
    )
    assert answer.status_code == 302
    entry = entries(FacilityProduct, offer.pk, action=LogEntry.Action.UPDATE).get()
    assert entry.actor == clerk and entry.additional_data["facility_id"] == site_a.facility.pk
    assert [str(value) for value in entry.changes["stock"]] == ["100", "110"]
    assert [str(value) for value in entry.changes["is_available"]] == ["True", "False"]
