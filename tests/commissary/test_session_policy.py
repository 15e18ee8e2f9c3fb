"""Signed-in pages are never cached, and a staff session ends when idle and after a shift."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from tests.factories import StaffFactory
from tests.payments.helpers import depositor

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url", ["/family/deposits/", "/family/account/", "/family/account/data.json", "/"]
)
def test_every_signed_in_family_page_says_no_store(client, url):
    client.force_login(depositor())
    answer = client.get(url)
    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"] and "private" in answer["Cache-Control"]


def test_staff_pages_say_no_store(client):
    client.force_login(StaffFactory(is_superuser=True))
    answer = client.get("/admin/")
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]


def test_a_signed_out_page_is_not_marked_no_store_by_the_policy(client):
    assert "no-store" not in client.get("/").get("Cache-Control", "")


def test_a_staff_session_ends_after_the_idle_timeout(client, settings):
    settings.STAFF_IDLE_TIMEOUT_MINUTES = 30
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.force_login(StaffFactory(is_superuser=True))
        assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=29), tick=False):
        assert client.get("/admin/").status_code == 200  # activity keeps it alive
    with time_machine.travel(start + dt.timedelta(minutes=58), tick=False):
        assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=89), tick=False):
        answer = client.get("/admin/ledger/")
        assert answer.status_code == 302
        assert answer["Location"] == "/admin/login/?next=/admin/ledger/"
        assert "_auth_user_id" not in client.session


def test_a_busy_staff_session_still_ends_after_the_shift(client, settings):
    settings.STAFF_SESSION_MAX_HOURS = 10
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.force_login(StaffFactory(is_superuser=True))
        client.get("/admin/")
    for minutes in range(20, 600, 20):
        with time_machine.travel(start + dt.timedelta(minutes=minutes), tick=False):
            assert client.get("/admin/").status_code == 200
    with time_machine.travel(start + dt.timedelta(hours=10, minutes=1), tick=False):
        assert client.get("/admin/").status_code == 302
        assert "_auth_user_id" not in client.session


def test_a_family_session_has_no_staff_idle_timeout(client):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.force_login(depositor())
        client.get("/family/deposits/")
    with time_machine.travel(start + dt.timedelta(hours=2), tick=False):
        assert client.get("/family/deposits/").status_code == 200
