import pytest
from django.core.cache import cache

from accounts.roles import SECURITY_OFFICER, assign_role
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.payments.helpers import depositor


@pytest.fixture(autouse=True)
def _sandbox_on(settings):
    settings.PAYMENTS_SANDBOX = True


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


# An inmate, a family who pays for them, and a security officer at their facility (a test file
# that needs another kind of officer defines its own).


@pytest.fixture
def inmate():
    return InmateFactory(facility=FacilityFactory())


@pytest.fixture
def family():
    return depositor("mother@example.com")


@pytest.fixture
def officer(inmate):
    staff = StaffFactory(facilities=[inmate.facility])
    assign_role(staff, SECURITY_OFFICER)
    return staff
