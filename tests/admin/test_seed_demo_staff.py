"""``seed_demo --facilities N``: N demo facilities, each with one staff member per role (two
trust officers, two facility administrators), whose credentials sign in and who see only their
own facility."""

import json

import pytest
from django.core.management import call_command
from django.http import HttpRequest

from accounts.models import User
from accounts.selectors import facility_ids_for
from facilities.models import Facility

pytestmark = pytest.mark.django_db

ROLE_KEYS = {
    "facility_admin",
    "facility_admin_2",
    "trust_officer",
    "trust_officer_2",
    "clerk",
    "auditor",
    "security_officer",
}


def test_each_demo_facility_has_its_staff_by_role_in_the_credentials(tmp_path, client):
    out = tmp_path / "creds.json"
    call_command("seed_demo", "--inmates", "3", "--facilities", "2", "--credentials-out", out)
    credentials = json.loads(out.read_text())
    assert {"staff", "depositor", "kiosk", "inmates"} <= set(credentials)
    assert credentials["staff"]["username"] == "staff"
    facilities = credentials["facilities"]
    assert [entry["code"] for entry in facilities] == ["demo", "demo2"]
    for entry in facilities:
        facility = Facility.objects.get(code=entry["code"])
        assert entry["name"] == facility.name and len(entry["inmates"]) == 3
        assert entry["kiosk"]["key"] and set(entry["staff"]) == ROLE_KEYS
        for staff in entry["staff"].values():
            assert client.login(
                request=HttpRequest(), username=staff["username"], password=staff["password"]
            )
            user = client.session.get("_auth_user_id")
            assert facility_ids_for(User.objects.get(pk=user)) == {facility.pk}
    trust_officer = facilities[0]["staff"]["trust_officer"]
    client.login(
        request=HttpRequest(),
        username=trust_officer["username"],
        password=trust_officer["password"],
    )
    assert client.get("/admin/ledger/staffrequest/add/").status_code == 200

    # A second run finds everything and keeps the kiosks of the first.
    call_command("seed_demo", "--inmates", "3", "--facilities", "2", "--credentials-out", out)
    again = json.loads(out.read_text())
    assert [f["kiosk"]["key"] for f in again["facilities"]] == [
        f["kiosk"]["key"] for f in facilities
    ]
