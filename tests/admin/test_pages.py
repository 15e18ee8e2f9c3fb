"""What staff see on the admin pages: links they can follow, fields they can use, amounts in
yuan."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_dashboard_and_reports_are_linked_only_for_staff_who_may_open_them(client, site_a):
    client.force_login(site_a.staff["clerk"])
    clerk_index = client.get("/admin/").content.decode()
    assert "/admin/reports/dashboard/" not in clerk_index
    assert client.get("/admin/reports/dashboard/").status_code == 403

    client.force_login(site_a.staff["auditor"])
    auditor_index = client.get("/admin/").content.decode()
    assert "/admin/reports/dashboard/" in auditor_index and "/admin/reports/" in auditor_index
    assert client.get("/admin/reports/dashboard/").status_code == 200


def test_staff_who_may_only_view_an_inmate_see_no_pin_row(client, site_a):
    url = f"/admin/facilities/inmate/{site_a.inmate.pk}/change/"
    client.force_login(site_a.staff["trust_officer"])
    view_only = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "New PIN" not in view_only and "New pin" not in view_only
    assert "Surname" in view_only

    client.force_login(site_a.staff["facility_admin"])
    editable = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="new_pin"' in editable
