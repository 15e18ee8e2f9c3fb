"""Grades are each facility's policy: a transferred inmate takes the new facility's grade of the
same name, or none (no spending limit, the balance cap still holds), in the transfer's own
transaction and audit entry; the kiosk at the new facility then holds the inmate to that
grade's limit; a transfer that is refused changes no grade."""

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import translation

from catalog import selectors as catalog_selectors
from catalog.models import Order
from commissary import errors
from facilities import services
from facilities.models import Inmate
from ledger import services as ledger_services
from ledger.models import AccountEvent
from tests.catalog.helpers import funded, grade_at, order_from_kiosk, product_at
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import key

pytestmark = pytest.mark.django_db


def inmate_entries(inmate):
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Inmate), object_pk=str(inmate.pk)
    ).order_by("pk")


@pytest.fixture
def graded():
    """An inmate holding their facility's "Grade A" (¥400 a month) and a second facility."""
    inmate = InmateFactory()
    grade = grade_at(inmate.facility, limit_fen=40_000, name="Grade A")
    services.assign_grade(inmate_id=inmate.pk, grade_id=grade.pk)
    return Inmate.objects.get(pk=inmate.pk), grade, FacilityFactory()


def transfer(inmate, to_facility, idempotency_key=None):
    return services.transfer_inmate(
        inmate_id=inmate.pk,
        to_facility=to_facility,
        staff_id=None,
        idempotency_scope="system",
        idempotency_key=idempotency_key or key(),
    )


def test_the_inmate_takes_the_new_facility_s_grade_of_the_same_name_in_one_audit_entry(graded):
    inmate, old_grade, new_facility = graded
    grade_at(new_facility, limit_fen=10_000, name="Grade B")
    same_name = grade_at(new_facility, limit_fen=20_000, name="Grade A")
    before = inmate_entries(inmate).count()

    moved = transfer(inmate, new_facility)

    assert moved.grade == same_name
    stored = Inmate.objects.get(pk=inmate.pk)
    assert (stored.facility_id, stored.grade_id) == (new_facility.pk, same_name.pk)
    (entry,) = inmate_entries(inmate)[before:]
    assert entry.changes["grade"] == [old_grade.pk, same_name.pk]
    assert entry.changes["facility"] == [inmate.facility_id, new_facility.pk]
    assert entry.additional_data["facility_id"] == new_facility.pk


def test_without_a_grade_of_the_same_name_the_inmate_has_no_grade_there(graded):
    inmate, old_grade, new_facility = graded
    grade_at(new_facility, limit_fen=10_000, name="Grade B")
    grade_at(FacilityFactory(), limit_fen=10_000, name="Grade A")  # another facility's
    before = inmate_entries(inmate).count()

    moved = transfer(inmate, new_facility)

    assert moved.grade is None
    assert Inmate.objects.get(pk=inmate.pk).grade_id is None
    (entry,) = inmate_entries(inmate)[before:]
    assert entry.changes["grade"] == [old_grade.pk, None]


def test_an_inmate_without_a_grade_still_has_none_after_a_transfer():
    inmate = InmateFactory()
    new_facility = FacilityFactory()
    grade_at(new_facility, limit_fen=10_000, name="Grade A")

    assert transfer(inmate, new_facility).grade is None
    assert Inmate.objects.get(pk=inmate.pk).grade_id is None


def test_the_new_facility_s_kiosk_applies_the_same_name_grade_s_limit(graded):
    inmate, _old_grade, new_facility = graded
    funded(inmate, 20_000)
    grade_at(new_facility, limit_fen=2_000, name="Grade A")
    transfer(inmate, new_facility)
    device, _raw_key = services.register_kiosk_device(facility=new_facility, name="K")
    product = product_at(new_facility, price_fen=1_000)

    # ¥30 is within the old facility's ¥400 but over the new one's ¥20.
    with pytest.raises(errors.SpendingLimitExceeded):
        order_from_kiosk(inmate, device, product, "over", quantity=3)
    assert order_from_kiosk(inmate, device, product, "within", quantity=2).total_fen == 2_000

    spending = catalog_selectors.spending_of(inmate=Inmate.objects.get(pk=inmate.pk))
    assert (spending.limit_fen, spending.spent_fen, spending.remaining_fen) == (2_000, 2_000, 0)
    assert Order.objects.filter(inmate=inmate).count() == 1


def test_without_a_grade_there_the_new_facility_s_kiosk_applies_no_spending_limit():
    inmate = InmateFactory()
    tight = grade_at(inmate.facility, limit_fen=1_000, name="Grade D")
    services.assign_grade(inmate_id=inmate.pk, grade_id=tight.pk)
    funded(inmate, 20_000)
    new_facility = FacilityFactory()
    transfer(inmate, new_facility)
    device, _raw_key = services.register_kiosk_device(facility=new_facility, name="K")
    product = product_at(new_facility, price_fen=1_000)

    # ¥50 is five times the old grade's ¥10 a month: no limit holds now, only the balance.
    assert order_from_kiosk(inmate, device, product, "free", quantity=5).total_fen == 5_000

    spending = catalog_selectors.spending_of(inmate=Inmate.objects.get(pk=inmate.pk))
    assert (spending.limit_fen, spending.remaining_fen) == (None, None)


def test_a_transfer_refused_for_deposits_in_flight_changes_no_grade(graded):
    inmate, old_grade, new_facility = graded
    grade_at(new_facility, limit_fen=20_000, name="Grade A")
    ledger_services.reserve_deposit(
        idempotency_scope="depositor:1", inmate_id=inmate.pk, amount_fen=100, idempotency_key=key()
    )
    before = inmate_entries(inmate).count()

    with (
        translation.override("en"),
        pytest.raises(errors.ValidationFailed, match="awaiting payment"),
    ):
        transfer(inmate, new_facility)

    stored = Inmate.objects.get(pk=inmate.pk)
    assert (stored.facility_id, stored.grade_id) == (inmate.facility_id, old_grade.pk)
    assert inmate_entries(inmate).count() == before


def test_a_transfer_whose_record_cannot_move_changes_no_grade(graded):
    """The money moves first; a clash of inmate numbers at the new facility then rolls the
    whole transfer back, grade included."""
    inmate, old_grade, new_facility = graded
    grade_at(new_facility, limit_fen=20_000, name="Grade A")
    InmateFactory(facility=new_facility, inmate_number="TAKEN")

    with pytest.raises(errors.ValidationFailed, match="already in use"):
        services.transfer_inmate(
            inmate_id=inmate.pk,
            to_facility=new_facility,
            staff_id=None,
            idempotency_scope="system",
            idempotency_key=key(),
            inmate_number="TAKEN",
        )

    stored = Inmate.objects.get(pk=inmate.pk)
    assert (stored.facility_id, stored.grade_id) == (inmate.facility_id, old_grade.pk)
    assert not AccountEvent.objects.filter(inmate=inmate, kind=AccountEvent.Kind.MOVED).exists()


def test_a_replayed_transfer_returns_the_new_grade_and_logs_nothing_more(graded):
    inmate, _old_grade, new_facility = graded
    same_name = grade_at(new_facility, limit_fen=20_000, name="Grade A")
    first = transfer(inmate, new_facility, idempotency_key="t-1")
    after_first = inmate_entries(inmate).count()

    again = transfer(inmate, new_facility, idempotency_key="t-1")

    assert first.grade == again.grade == same_name
    assert inmate_entries(inmate).count() == after_first


def test_a_grade_a_transferred_inmate_took_cannot_be_deleted(graded):
    inmate, _old_grade, new_facility = graded
    same_name = grade_at(new_facility, limit_fen=20_000, name="Grade A")
    transfer(inmate, new_facility)

    with pytest.raises(errors.GradeInUse):
        services.delete_grade(grade_id=same_name.pk)
