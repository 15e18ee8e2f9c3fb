"""Staff mistakes in the intake and edit forms come back as form errors, never a server error,
and change nothing."""

import pytest

from facilities.models import Inmate
from tests.factories import FacilityFactory, HousingUnitFactory, InmateFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(StaffFactory(is_superuser=True))
    return client


def intake(client, **fields):
    return client.post(
        "/admin/facilities/inmate/add/",
        {
            "inmate_number": "Z-1",
            "surname": "Zhao",
            "given_name": "",
            "pin": "1234",
            "housing_unit": "",
            **fields,
        },
    )


def test_a_pin_with_letters_is_a_form_error(staff_client):
    response = intake(staff_client, facility=FacilityFactory().pk, pin="abcd")
    assert response.status_code == 200 and "A PIN is digits only." in response.content.decode()
    assert not Inmate.objects.exists()


def test_a_housing_unit_of_another_facility_is_a_form_error(staff_client):
    facility = FacilityFactory()
    elsewhere = HousingUnitFactory()
    response = intake(staff_client, facility=facility.pk, housing_unit=elsewhere.pk)
    assert response.status_code == 200
    assert "belongs to another facility" in response.content.decode()
    assert not Inmate.objects.exists()


def test_editing_an_inmate_cannot_move_it_into_another_facility_s_unit(staff_client):
    inmate = InmateFactory()
    elsewhere = HousingUnitFactory()
    response = staff_client.post(
        f"/admin/facilities/inmate/{inmate.pk}/change/",
        {
            "surname": inmate.surname,
            "given_name": inmate.given_name,
            "housing_unit": elsewhere.pk,
        },
    )
    assert response.status_code == 200
    inmate.refresh_from_db()
    assert inmate.housing_unit is None


def test_a_valid_intake_opens_the_ledger(staff_client):
    facility = FacilityFactory()
    unit = HousingUnitFactory(facility=facility)
    response = intake(staff_client, facility=facility.pk, housing_unit=unit.pk)
    assert response.status_code == 302
    inmate = Inmate.objects.get(inmate_number="Z-1")
    assert inmate.check_pin("1234") and inmate.ledger_accounts.count() == 2
