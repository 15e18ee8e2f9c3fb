"""Staff of each role at two facilities, for the admin and maker-checker tests."""

from dataclasses import dataclass

import pytest

from accounts.roles import AUDITOR, COMMISSARY_CLERK, FACILITY_ADMIN, TRUST_OFFICER, assign_role
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

ROLES = {
    "facility_admin": FACILITY_ADMIN,
    "trust_officer": TRUST_OFFICER,
    "trust_officer_2": TRUST_OFFICER,
    "clerk": COMMISSARY_CLERK,
    "auditor": AUDITOR,
}


def staff_with_role(role, facility):
    user = StaffFactory(facilities=[facility])
    assign_role(user, role)
    return user


@dataclass
class Site:
    facility: object
    inmate: object
    staff: dict


def make_site(code: str) -> Site:
    facility = FacilityFactory(code=code, name=f"Prison {code}")
    inmate = InmateFactory(facility=facility, surname=f"Surname{code}")
    return Site(
        facility=facility,
        inmate=inmate,
        staff={name: staff_with_role(role, facility) for name, role in ROLES.items()},
    )


@pytest.fixture
def site_a(db) -> Site:
    return make_site("alpha")


@pytest.fixture
def site_b(db) -> Site:
    return make_site("bravo")
