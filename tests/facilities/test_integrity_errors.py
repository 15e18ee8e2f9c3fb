"""Only the unique inmate number per facility is reported as "inmate number in use"; any
other integrity failure surfaces as itself instead of being dressed up as that sentence."""

import pytest
from django.db import IntegrityError

from commissary.errors import ValidationFailed
from facilities import services
from tests.factories import FacilityFactory, InmateFactory

pytestmark = pytest.mark.django_db


def test_a_taken_inmate_number_is_reported_as_in_use():
    facility = FacilityFactory()
    InmateFactory(facility=facility, inmate_number="D0000007")
    with pytest.raises(ValidationFailed, match="already in use"):
        services.intake_inmate(
            facility=facility, inmate_number="D0000007", surname="Wang", pin="1234"
        )


def test_another_integrity_failure_is_not_called_a_taken_number(monkeypatch):
    facility = FacilityFactory()
    taken = InmateFactory(facility=facility, inmate_number="D0000001")
    # Two card tokens the same: a unique violation that has nothing to do with the number.
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: taken.card_token)
    with pytest.raises(IntegrityError):
        services.intake_inmate(
            facility=facility, inmate_number="D0000002", surname="Li", pin="1234"
        )


def test_a_roster_with_a_taken_number_is_reported_as_in_use():
    from facilities.models import Inmate

    facility = FacilityFactory()
    InmateFactory(facility=facility, inmate_number="D0000009")
    with pytest.raises(ValidationFailed, match="already in use"):
        services.admit_roster(
            inmates=[Inmate(facility=facility, inmate_number="D0000009", surname="Zhao")]
        )
