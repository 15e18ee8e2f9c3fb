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


def _auditor_of(*timezones: str):
    """An auditor assigned to one facility in each of ``timezones``."""
    auditor = StaffFactory(
        facilities=[
            FacilityFactory(code=f"site{number}", timezone=name)
            for number, name in enumerate(timezones)
        ]
    )
    assign_role(auditor, AUDITOR)
    return auditor


@pytest.mark.parametrize(
    ("timezones", "today"),
    [
        (["Asia/Urumqi"], URUMQI_TODAY),
        (["Asia/Urumqi", "Asia/Urumqi"], URUMQI_TODAY),
        (["Asia/Urumqi", "Asia/Shanghai"], SHANGHAI_TODAY),  # no one time of theirs: the site's
    ],
    ids=["one facility", "two in one timezone", "two in different timezones"],
)
@time_machine.travel(INSTANT, tick=False)
def test_staff_see_their_facilities_today_where_they_keep_one_timezone(client, timezones, today):
    client.force_login(_auditor_of(*timezones))
    assert _today_starts(client) == today


@time_machine.travel(INSTANT, tick=False)
def test_superusers_read_the_sites_time(client):
    client.force_login(StaffFactory(is_superuser=True))
    assert _today_starts(client) == SHANGHAI_TODAY


@time_machine.travel(INSTANT, tick=False)
def test_the_timezone_ends_with_the_request(client):
    """A request in a facility's time leaves none behind for the next in the same thread."""
    client.force_login(_auditor_of("Asia/Urumqi"))
    assert _today_starts(client) == URUMQI_TODAY
    client.force_login(StaffFactory(is_superuser=True))
    assert _today_starts(client) == SHANGHAI_TODAY
