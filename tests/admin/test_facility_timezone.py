"""A staff member's admin pages are in their facility's time: where every facility they are
assigned to keeps one timezone, the date filters' "Today", the date hierarchies and the times
shown are that timezone's, not the site's ``TIME_ZONE`` (Asia/Shanghai). Someone whose
facilities keep different timezones, and a superuser, read the site's.

At 17:30 UTC on 10 June it is 01:30 on the 11th in Shanghai and 23:30 on the 10th in Urumqi."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.admin import DateFieldListFilter

from accounts.roles import AUDITOR, assign_role
from tests.factories import FacilityFactory, StaffFactory

from .conftest import staff_with_role

pytestmark = pytest.mark.django_db

AUDIT_LIST = "/admin/auditlog/logentry/"
INSTANT = dt.datetime(2026, 6, 10, 17, 30, tzinfo=dt.UTC)
URUMQI_TODAY = dt.datetime(2026, 6, 10, tzinfo=ZoneInfo("Asia/Urumqi"))
SHANGHAI_TODAY = dt.datetime(2026, 6, 11, tzinfo=ZoneInfo("Asia/Shanghai"))


def _today_starts(client) -> dt.datetime:
    """Where the audit list's date filter says today starts (its "Today" link)."""
    response = client.get(AUDIT_LIST)
    assert response.status_code == 200
    (dates,) = [
        spec
        for spec in response.context["cl"].filter_specs
        if isinstance(spec, DateFieldListFilter)
    ]
    _any_date, (_title, today), *_rest = dates.links
    return today["timestamp__gte"]  # an aware midnight: compared as an instant


@time_machine.travel(INSTANT, tick=False)
def test_staff_of_a_facility_in_another_timezone_see_its_today(client):
    auditor = staff_with_role(AUDITOR, FacilityFactory(code="urumqi", timezone="Asia/Urumqi"))
    client.force_login(auditor)
    assert _today_starts(client) == URUMQI_TODAY


@time_machine.travel(INSTANT, tick=False)
def test_staff_of_two_facilities_in_one_timezone_see_its_today(client):
    auditor = StaffFactory(
        facilities=[
            FacilityFactory(code="urumqi1", timezone="Asia/Urumqi"),
            FacilityFactory(code="urumqi2", timezone="Asia/Urumqi"),
        ]
    )
    assign_role(auditor, AUDITOR)
    client.force_login(auditor)
    assert _today_starts(client) == URUMQI_TODAY


@time_machine.travel(INSTANT, tick=False)
def test_facilities_in_different_timezones_and_superusers_read_the_sites_time(client):
    auditor = StaffFactory(
        facilities=[
            FacilityFactory(code="urumqi", timezone="Asia/Urumqi"),
            FacilityFactory(code="beijing", timezone="Asia/Shanghai"),
        ]
    )
    assign_role(auditor, AUDITOR)
    client.force_login(auditor)
    assert _today_starts(client) == SHANGHAI_TODAY

    client.force_login(StaffFactory(is_superuser=True))
    assert _today_starts(client) == SHANGHAI_TODAY


@time_machine.travel(INSTANT, tick=False)
def test_the_timezone_ends_with_the_request(client):
    """A request in a facility's time leaves none behind for the next in the same thread."""
    urumqi = staff_with_role(AUDITOR, FacilityFactory(code="urumqi", timezone="Asia/Urumqi"))
    client.force_login(urumqi)
    assert _today_starts(client) == URUMQI_TODAY
    client.force_login(StaffFactory(is_superuser=True))
    assert _today_starts(client) == SHANGHAI_TODAY
