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
