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
