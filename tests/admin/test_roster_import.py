"""Roster import (django-import-export): the preview shows every row's errors and writes
nothing; a clean roster admits every inmate with both ledger accounts; another facility's code
is refused; 10,000 rows import in seconds."""

import time

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile

from facilities.models import Inmate
from facilities.roster import InmateRosterResource
from ledger.models import Account
from tests.factories import HousingUnitFactory

pytestmark = pytest.mark.django_db

HEADER = "facility,inmate_number,surname,given_name,housing_unit\n"


def upload(client, text: str):
    return client.post(
        "/admin/facilities/inmate/import/",
        {
            "import_file": SimpleUploadedFile("roster.csv", text.encode(), "text/csv"),
            "format": "0",
            "resource": "0",
        },
    )


def test_the_preview_lists_every_row_s_error_and_writes_nothing(client, site_a, site_b):
    HousingUnitFactory(facility=site_a.facility, name="East")
    client.force_login(site_a.staff["facility_admin"])
    roster = (
        HEADER
        + "alpha,R-1,Li,Wei,East\n"
        + f"alpha,{site_a.inmate.inmate_number},Wang,,\n"
        + "bravo,R-2,Zhou,,\n"
        + "alpha,R-3,,,\n"
        + "alpha,R-4,Sun,,West\n"
        + "alpha,R-1,Zhao,,\n"
    )
    page = upload(client, roster)
    text = page.content.decode()
    assert page.status_code == 200
    assert "already in use at this facility" in text
    assert "No facility with the code “bravo” that you work at." in text
    assert "A surname is required." in text
    assert "No housing unit “West” at this facility." in text
    assert Inmate.objects.count() == 2  # the two sites' own inmates only


def test_a_clean_roster_admits_every_inmate_with_its_accounts(client, site_a):
    HousingUnitFactory(facility=site_a.facility, name="East")
    client.force_login(site_a.staff["facility_admin"])
    page = upload(client, HEADER + "alpha,R-1,Li,Wei,East\nalpha,R-2,Wang,,\n")
    confirm = page.context["confirm_form"].initial
    client.post("/admin/facilities/inmate/process_import/", confirm)
    admitted = Inmate.objects.filter(inmate_number__in=["R-1", "R-2"], facility=site_a.facility)
    assert admitted.count() == 2
    assert admitted.get(inmate_number="R-1").housing_unit.name == "East"
    assert Account.objects.filter(inmate__in=admitted).count() == 4
    assert all(inmate.card_token and not inmate.pin_hash for inmate in admitted)


def test_roles_without_intake_cannot_import(client, site_a):
    client.force_login(site_a.staff["auditor"])
    assert upload(client, HEADER + "alpha,R-1,Li,,\n").status_code == 403
    assert not Inmate.objects.filter(inmate_number="R-1").exists()


def test_ten_thousand_rows_import_in_seconds(site_a):
    dataset = tablib.Dataset(headers=HEADER.strip().split(","))
    for index in range(10_000):
        dataset.append(["alpha", f"BULK{index:05d}", "Li", "", ""])
    resource = InmateRosterResource(user=site_a.staff["facility_admin"])
    started = time.monotonic()
    preview = resource.import_data(dataset, dry_run=True)
    previewed = time.monotonic() - started
    assert not preview.has_errors() and not preview.has_validation_errors()
    started = time.monotonic()
    result = resource.import_data(dataset, dry_run=False)
    imported = time.monotonic() - started
    assert not result.has_errors() and not result.has_validation_errors()
    assert Inmate.objects.filter(inmate_number__startswith="BULK").count() == 10_000
    assert Account.objects.filter(inmate__inmate_number__startswith="BULK").count() == 20_000
    print(f"10,000 roster rows: preview {previewed:.1f} s, import {imported:.1f} s")
    assert previewed < 30 and imported < 30
