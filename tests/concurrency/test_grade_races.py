"""A grade deleted while inmates are given it, on PostgreSQL: either the delete wins and no
inmate holds the vanished grade, or an inmate gets it first and the delete is refused; never a
foreign-key error, never an inmate pointing at a deleted grade."""

import pytest

from commissary import errors
from facilities import services
from facilities.models import Grade, Inmate
from tests.factories import FacilityFactory, InmateFactory

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def test_a_grade_deleted_while_inmates_are_given_it_ends_consistent(run_together):
    facility = FacilityFactory()
    inmates = [InmateFactory(facility=facility) for _ in range(4)]
    for round_number in range(8):
        grade = Grade.objects.create(facility=facility, name=f"round {round_number}")
        Inmate.objects.filter(facility=facility).update(grade=None)

        outcomes = run_together(
            [
                lambda grade_id=grade.pk: services.delete_grade(grade_id=grade_id),
                *[
                    lambda inmate_id=inmate.pk, grade_id=grade.pk: services.assign_grade(
                        inmate_id=inmate_id, grade_id=grade_id
                    )
                    for inmate in inmates
                ],
            ]
        )

        deleted, *assigned = outcomes
        holders = Inmate.objects.filter(grade_id=grade.pk).count()
        given = sum(outcome.succeeded for outcome in assigned)
        assert all(
            isinstance(outcome.error, errors.ValidationFailed)
            for outcome in assigned
            if not outcome.succeeded
        )
        if deleted.succeeded:
            assert not Grade.objects.filter(pk=grade.pk).exists()
            assert holders == 0 and given == 0
        else:
            assert isinstance(deleted.error, errors.GradeInUse)
            assert Grade.objects.filter(pk=grade.pk).exists()
            assert holders == given == len(inmates)


def test_a_grade_deleted_while_inmates_are_transferred_to_its_facility_ends_consistent(
    run_together,
):
    """The transfer reads the new facility's grade of the same name ``FOR KEY SHARE``: the
    delete either wins (the inmates arrive with no grade) or is refused (they all hold it);
    every transfer goes through either way."""
    for round_number in range(6):
        origin, destination = FacilityFactory(), FacilityFactory()
        name = f"round {round_number}"
        at_origin = Grade.objects.create(facility=origin, name=name)
        grade = Grade.objects.create(facility=destination, name=name)
        inmates = [InmateFactory(facility=origin) for _ in range(4)]
        Inmate.objects.filter(facility=origin).update(grade=at_origin)

        outcomes = run_together(
            [
                lambda grade_id=grade.pk: services.delete_grade(grade_id=grade_id),
                *[
                    lambda inmate_id=inmate.pk, to_facility=destination: services.transfer_inmate(
                        inmate_id=inmate_id,
                        to_facility=to_facility,
                        staff_id=None,
                        idempotency_scope="system",
                        idempotency_key=f"grade-race-{inmate_id}",
                    )
                    for inmate in inmates
                ],
            ]
        )

        deleted, *transferred = outcomes
        assert all(outcome.succeeded for outcome in transferred), transferred
        arrived = Inmate.objects.filter(facility=destination)
        assert arrived.count() == len(inmates)
        if deleted.succeeded:
            assert not Grade.objects.filter(pk=grade.pk).exists()
            assert set(arrived.values_list("grade_id", flat=True)) == {None}
        else:
            assert isinstance(deleted.error, errors.GradeInUse)
            assert set(arrived.values_list("grade_id", flat=True)) == {grade.pk}
