"""Inmate fields in staff forms are searched by number or name within the staff member's
facilities: the money request and restriction forms render no option per inmate, and the
autocomplete answers only the user's facilities."""

import re

import pytest

from accounts.roles import COMMISSARY_CLERK
from tests.admin.conftest import staff_with_role
from tests.factories import InmateFactory

pytestmark = pytest.mark.django_db

AUTOCOMPLETE = "/admin/autocomplete/"


def options_of(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None, f"no select named {name}"
    return re.findall(r"<option[^>]*>(.*?)</option>", select.group(1), re.S)


def test_the_money_request_form_renders_no_option_per_inmate(client, site_a):
    for _ in range(30):
        InmateFactory(facility=site_a.facility)
    client.force_login(site_a.staff["trust_officer"])
    page = client.get("/admin/ledger/staffrequest/add/").content.decode()
    assert "admin-autocomplete" in page
    assert [option for option in options_of(page, "inmate") if option.strip()] == []


def test_the_inmate_autocomplete_finds_by_number_or_name_only_in_the_users_facilities(
    client, site_a, site_b
):
    client.force_login(site_a.staff["trust_officer"])
    query = {"app_label": "ledger", "model_name": "staffrequest", "field_name": "inmate"}
    by_number = client.get(AUTOCOMPLETE, query | {"term": site_a.inmate.inmate_number}).json()
    assert [row["id"] for row in by_number["results"]] == [str(site_a.inmate.pk)]
    by_name = client.get(AUTOCOMPLETE, query | {"term": site_a.inmate.surname}).json()
    assert [row["id"] for row in by_name["results"]] == [str(site_a.inmate.pk)]
    elsewhere = client.get(AUTOCOMPLETE, query | {"term": site_b.inmate.surname}).json()
    assert elsewhere["results"] == []


def test_a_restriction_form_shows_no_other_facilitys_inmate(client, site_a, site_b):
    clerk = staff_with_role(COMMISSARY_CLERK, site_a.facility)
    client.force_login(clerk)
    page = client.get(f"/admin/catalog/restriction/add/?inmate={site_b.inmate.pk}")
    text = page.content.decode()
    assert site_b.inmate.surname not in text
    assert [option for option in options_of(text, "inmate") if option.strip()] == []
