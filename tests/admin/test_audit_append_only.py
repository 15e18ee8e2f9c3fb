"""The audit trail is append-only, as the journal is: the database refuses an UPDATE or DELETE
of an entry (a trigger), and no one, superusers included, can add, edit or delete an entry
through the admin."""

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.db import ProgrammingError, connection, transaction

from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db


def _raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def entry(client, site_a):
    client.force_login(site_a.staff["facility_admin"])
    client.post(
        f"/admin/facilities/inmate/{site_a.inmate.pk}/change/",
        {"surname": "Renamed", "given_name": "", "housing_unit": ""},
    )
    return LogEntry.objects.filter(action=LogEntry.Action.UPDATE).latest("pk")


def test_an_audit_entry_cannot_be_updated_in_the_database(entry):
    with pytest.raises(ProgrammingError, match="Cannot update"):
        _raw("UPDATE auditlog_logentry SET object_repr = 'edited' WHERE id = %s", [entry.pk])
    with pytest.raises(ProgrammingError, match="Cannot update"):
        _raw(
            "UPDATE auditlog_logentry SET actor_id = NULL, changes = '{}' WHERE id = %s", [entry.pk]
        )
    entry.refresh_from_db()
    assert entry.object_repr != "edited" and entry.changes["surname"][1] == "Renamed"


def test_an_audit_entry_cannot_be_deleted_in_the_database(entry):
    count = LogEntry.objects.count()
    with pytest.raises(ProgrammingError, match="Cannot delete"):
        _raw("DELETE FROM auditlog_logentry")
    with pytest.raises(ProgrammingError, match="Cannot delete"), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).delete()
    assert LogEntry.objects.count() == count


def test_deleting_a_person_keeps_their_entries_and_who_they_were(client, site_a):
    """The one update let through: the actor set to NULL when the person is deleted."""
    person = site_a.staff["facility_admin"]
    person.email = "admin.alpha@example.org"
    person.save()
    client.force_login(person)
    client.post(
        f"/admin/facilities/inmate/{site_a.inmate.pk}/change/",
        {"surname": "Renamed", "given_name": "", "housing_unit": ""},
    )
    entry = LogEntry.objects.filter(action=LogEntry.Action.UPDATE, actor=person).latest("pk")
    get_user_model().objects.filter(pk=person.pk).delete()
    entry.refresh_from_db()
    assert entry.actor_id is None and entry.actor_email == "admin.alpha@example.org"
    assert entry.changes["surname"][1] == "Renamed"


def test_no_one_can_add_change_or_delete_an_entry_in_the_admin(client, entry):
    superuser = StaffFactory(is_superuser=True)
    client.force_login(superuser)
    change_url = f"/admin/auditlog/logentry/{entry.pk}/change/"
    page = client.get(change_url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(change_url, {"object_repr": "edited"}).status_code == 403
    assert client.get("/admin/auditlog/logentry/add/").status_code == 403
    assert (
        client.post(f"/admin/auditlog/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    listing = client.get("/admin/auditlog/logentry/")
    assert listing.context["action_form"] is None  # no list action at all
    client.post(
        "/admin/auditlog/logentry/",
        {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"},
    )
    entry.refresh_from_db()
    assert entry.object_repr != "edited"
    assert LogEntry.objects.filter(pk=entry.pk).exists()
