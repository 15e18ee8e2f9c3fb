"""The grade services: giving an inmate a grade writes the grade column only and leaves an
audit entry naming the facility; a grade inmates hold is not deleted (the refusal reads in
both languages) and one nobody holds is."""

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import translation

from commissary.errors import GradeInUse, InmateNotFound, ValidationFailed
from facilities import services
from facilities.models import Grade, Inmate
from tests.factories import FacilityFactory, InmateFactory

pytestmark = pytest.mark.django_db


def inmate_entries(inmate):
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Inmate), object_pk=str(inmate.pk)
    ).order_by("pk")


@pytest.fixture
def inmate():
    return InmateFactory()


@pytest.fixture
def grade(inmate):
    return Grade.objects.create(facility=inmate.facility, name="一级", spending_limit_fen=40_000)


def test_a_new_grade_and_its_removal_are_each_one_audit_entry_for_the_facility(inmate, grade):
    before = inmate_entries(inmate).count()

    services.assign_grade(inmate_id=inmate.pk, grade_id=grade.pk)
    services.assign_grade(inmate_id=inmate.pk, grade_id=grade.pk)  # no change, no entry
    services.assign_grade(inmate_id=inmate.pk, grade_id=None)

    given, removed = inmate_entries(inmate)[before:]
    assert given.changes == {"grade": [None, grade.pk]}
    assert removed.changes == {"grade": [grade.pk, None]}
    assert {given.additional_data["facility_id"], removed.additional_data["facility_id"]} == {
        inmate.facility_id
    }
    assert Inmate.objects.get(pk=inmate.pk).grade_id is None


def test_a_grade_of_another_facility_is_refused_and_nothing_is_logged(inmate):
    elsewhere = Grade.objects.create(facility=FacilityFactory(), name="x", spending_limit_fen=1)
    before = inmate_entries(inmate).count()
    with pytest.raises(ValidationFailed):
        services.assign_grade(inmate_id=inmate.pk, grade_id=elsewhere.pk)
    assert Inmate.objects.get(pk=inmate.pk).grade_id is None
    assert inmate_entries(inmate).count() == before


def test_a_missing_inmate_is_named_as_such():
    with pytest.raises(InmateNotFound):
        services.assign_grade(inmate_id=999_999, grade_id=None)


@pytest.mark.parametrize(
    ("language", "refusal"),
    [
        ("en", "1 inmate holds the grade 一级: give them another grade before deleting it."),
        ("zh-hans", "有 1 名在押人员持有管理等级“一级”：请先为其更换管理等级，再删除。"),
    ],
)
def test_deleting_a_grade_an_inmate_holds_is_refused_readably_and_deletes_nothing(
    inmate, grade, language, refusal
):
    services.assign_grade(inmate_id=inmate.pk, grade_id=grade.pk)
    with translation.override(language), pytest.raises(GradeInUse) as refused:
        services.delete_grade(grade_id=grade.pk)
    assert str(refused.value.message) == refusal
    assert refused.value.code == "grade_in_use"
    assert Grade.objects.filter(pk=grade.pk).exists()
    assert Inmate.objects.get(pk=inmate.pk).grade_id == grade.pk


def test_a_grade_nobody_holds_is_deleted_once(grade):
    services.delete_grade(grade_id=grade.pk)
    services.delete_grade(grade_id=grade.pk)
    assert not Grade.objects.filter(pk=grade.pk).exists()
