"""Admin actions and forms that move money or cannot be undone show what will happen first,
and ask again; the forms refuse what the rules forbid, as sentences."""

import uuid

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType

from facilities.models import HousingUnit, Inmate, KioskDevice
from facilities.services import assign_grade, register_kiosk_device
from ledger.selectors import inmate_balance
from tests.catalog.helpers import grade_at
from tests.factories import FacilityFactory, HousingUnitFactory, InmateFactory
from tests.ledger.helpers import deposit, kiosk_order

pytestmark = pytest.mark.django_db


def release(client, inmates, **extra):
    return client.post(
        "/admin/facilities/inmate/",
        {"action": "release_inmates", "_selected_action": [i.pk for i in inmates], **extra},
    )


def test_release_first_shows_each_inmate_s_payout_and_moves_nothing(client, site_a):
    second = InmateFactory(facility=site_a.facility)
    deposit(site_a.inmate, 12_345)
    deposit(second, 100)
    client.force_login(site_a.staff["facility_admin"])
    page = release(client, [site_a.inmate, second])
    text = page.content.decode()
    assert page.status_code == 200 and "¥123.45" in text and "¥124.45" in text
    site_a.inmate.refresh_from_db()
    assert site_a.inmate.status == Inmate.Status.ACTIVE


def test_releasing_many_needs_the_count_typed_back(client, site_a):
    second = InmateFactory(facility=site_a.facility)
    client.force_login(site_a.staff["facility_admin"])
    wrong = release(client, [site_a.inmate, second], confirm_count="1", request_key=uuid.uuid4())
    assert "type 2 to release them" in wrong.content.decode()
    assert Inmate.objects.filter(status="released").count() == 0
    release(client, [site_a.inmate, second], confirm_count="2", request_key=uuid.uuid4())
    assert Inmate.objects.filter(status="released").count() == 2


def test_transfer_preview_shows_what_moves_to_held_before_anything_moves(client, site_a):
    small = FacilityFactory(balance_cap_fen=10_000)
    from accounts.models import FacilityAssignment

    FacilityAssignment.objects.create(user=site_a.staff["facility_admin"], facility=small)
    deposit(site_a.inmate, 15_000)
    client.force_login(site_a.staff["facility_admin"])
    key = str(uuid.uuid4())
    base = {
        "action": "transfer_inmates",
        "_selected_action": [site_a.inmate.pk],
        "to_facility": small.pk,
        "request_key": key,
    }
    preview = client.post("/admin/facilities/inmate/", {**base, "preview": "1"})
    assert "¥50.00" in preview.content.decode()  # 150.00 over a 100.00 cap
    site_a.inmate.refresh_from_db()
    assert site_a.inmate.facility_id == site_a.facility.pk
    client.post("/admin/facilities/inmate/", {**base, "apply": "1"})
    money = inmate_balance(inmate=Inmate.objects.get(pk=site_a.inmate.pk))
    assert (money.spendable_fen, money.held_fen) == (10_000, 5_000)


@pytest.mark.parametrize(
    ("language", "column", "no_grade_yet", "kept", "dropped"),
    [
        (
            "en",
            "Grade at the new facility",
            "None: assign one after the transfer",
            "{inmate} transferred. Grade Grade A kept as the new facility's Grade A.",
            "{inmate} transferred. No grade at the new facility: assign one.",
        ),
        (
            "zh-hans",
            "新监所的管理等级",
            "无：转移后请指定",
            "{inmate} 已转移。管理等级“Grade A”沿用为新监所的“Grade A”。",
            "{inmate} 已转移。新监所没有同名管理等级：请为其指定一个。",
        ),
    ],
    ids=["en", "zh-hans"],
)
def test_a_transfer_shows_then_says_what_becomes_of_each_inmate_s_grade(
    client, site_a, language, column, no_grade_yet, kept, dropped
):
    from accounts.models import FacilityAssignment

    there = FacilityFactory()
    FacilityAssignment.objects.create(user=site_a.staff["facility_admin"], facility=there)
    second = InmateFactory(facility=site_a.facility)
    assign_grade(
        inmate_id=site_a.inmate.pk,
        grade_id=grade_at(site_a.facility, limit_fen=40_000, name="Grade A").pk,
    )
    assign_grade(
        inmate_id=second.pk, grade_id=grade_at(site_a.facility, limit_fen=40_000, name="Grade C").pk
    )
    same_name = grade_at(there, limit_fen=20_000, name="Grade A")
    client.force_login(site_a.staff["facility_admin"])
    base = {
        "action": "transfer_inmates",
        "_selected_action": [site_a.inmate.pk, second.pk],
        "to_facility": there.pk,
        "request_key": str(uuid.uuid4()),
    }

    preview = client.post(
        "/admin/facilities/inmate/", {**base, "preview": "1"}, HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert column in preview and no_grade_yet in preview
    assert Inmate.objects.filter(facility=there).count() == 0

    answer = client.post(
        "/admin/facilities/inmate/",
        {**base, "apply": "1"},
        HTTP_ACCEPT_LANGUAGE=language,
        follow=True,
    )
    said = {(message.level_tag, str(message)) for message in answer.context["messages"]}
    assert said == {
        ("info", kept.format(inmate=site_a.inmate)),
        ("warning", dropped.format(inmate=second)),
    }
    grades = dict(Inmate.objects.filter(facility=there).values_list("pk", "grade_id"))
    assert grades == {site_a.inmate.pk: same_name.pk, second.pk: None}


def test_a_housing_unit_with_inmates_cannot_move_to_another_facility(client, site_a, site_b):
    from accounts.models import FacilityAssignment

    unit = HousingUnitFactory(facility=site_a.facility)
    InmateFactory(facility=site_a.facility, housing_unit=unit)
    admin_user = site_a.staff["facility_admin"]
    FacilityAssignment.objects.create(user=admin_user, facility=site_b.facility)
    client.force_login(admin_user)
    answer = client.post(
        f"/admin/facilities/housingunit/{unit.pk}/change/",
        {"facility": site_b.facility.pk, "name": unit.name},
    )
    assert "still has inmates" in answer.content.decode()
    assert HousingUnit.objects.get(pk=unit.pk).facility_id == site_a.facility.pk


def test_an_inmate_s_housing_unit_choices_are_their_facility_s(client, site_a):
    mine = HousingUnitFactory(facility=site_a.facility, name="Mine")
    client.force_login(site_a.staff["facility_admin"])
    other = HousingUnitFactory(name="Elsewhere")
    page = client.get(f"/admin/facilities/inmate/{site_a.inmate.pk}/change/").content.decode()
    assert mine.name in page and other.name not in page


def test_a_kiosk_key_is_shown_once_on_its_own_page(client, site_a):
    client.force_login(site_a.staff["facility_admin"])
    page = client.post(
        "/admin/facilities/kioskdevice/add/", {"facility": site_a.facility.pk, "name": "Block A"}
    )
    text = page.content.decode()
    device = KioskDevice.objects.get(name="Block A")
    assert "kiosk_" in text and device.key_prefix in text
    again = client.get(f"/admin/facilities/kioskdevice/{device.pk}/change/").content.decode()
    assert device.key_prefix in again and "kiosk_" + text.split("kiosk_")[1][:20] not in again


def test_revoking_asks_first_then_revokes(client, site_a):
    device, _ = register_kiosk_device(facility=site_a.facility, name="K")
    client.force_login(site_a.staff["facility_admin"])
    base = {"action": "revoke", "_selected_action": [device.pk]}
    client.post("/admin/facilities/kioskdevice/", base)
    device.refresh_from_db()
    assert device.is_active
    client.post("/admin/facilities/kioskdevice/", {**base, "apply": "1"})
    device.refresh_from_db()
    assert not device.is_active and device.revoked_at is not None
    # One UPDATE, which no model signal sees: the service writes the audit entry itself.
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(KioskDevice),
        object_pk=str(device.pk),
        action=LogEntry.Action.UPDATE,
    )
    assert entry.actor == site_a.staff["facility_admin"]
    assert entry.additional_data["facility_id"] == site_a.facility.pk
    assert entry.changes["is_active"] == [True, False]


def test_a_kiosk_with_history_is_never_deleted(client, site_a):
    device, _ = register_kiosk_device(facility=site_a.facility, name="K")
    deposit(site_a.inmate, 1_000)
    kiosk_order(site_a.inmate, 100, idempotency_key="sale-1", device=device)
    client = client
    from tests.factories import StaffFactory

    client.force_login(StaffFactory(is_superuser=True))
    answer = client.post(f"/admin/facilities/kioskdevice/{device.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 403
    assert KioskDevice.objects.filter(pk=device.pk).exists()


def test_facility_amounts_are_typed_in_yuan_and_stored_exactly_in_fen(client):
    from facilities.models import Facility
    from tests.factories import StaffFactory

    client.force_login(StaffFactory(is_superuser=True))
    client.post(
        "/admin/facilities/facility/add/",
        {
            "code": "yuan",
            "name": "Yuan prison",
            "timezone": "Asia/Shanghai",
            "currency": "CNY",
            "monthly_cap": "1,000.00",
            "balance_cap": "5,000.10",
            "deposit_fee_fixed": "0.30",
            "deposit_fee_rate_bp": "0",
            "adjustment_approval_threshold": "500",
            "links_need_approval": "on",
            "trust_alert_emails": "",
        },
    )
    facility = Facility.objects.get(code="yuan")
    assert (facility.monthly_cap_fen, facility.balance_cap_fen) == (100_000, 500_010)
    assert (facility.deposit_fee_fixed_fen, facility.adjustment_approval_threshold_fen) == (
        30,
        50_000,
    )
