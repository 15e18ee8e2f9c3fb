"""Grades and their spending limits are facility policy: a facility administrator keeps the
grades of their own facilities (limits typed in yuan, stored in fen) and never sees another
facility's; the other roles only read them; a grade inmates hold is not deleted, and the
refusal reads as a sentence; every change to a grade, a festival month or an inmate's grade is
in the audit trail with the person and the facility."""

import datetime as dt

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from facilities import services as facility_services
from facilities.models import FestivalMonth, Grade, Inmate

pytestmark = pytest.mark.django_db

GRADES = reverse("admin:facilities_grade_changelist")
ADD_GRADE = reverse("admin:facilities_grade_add")


def change_url(grade):
    return reverse("admin:facilities_grade_change", args=[grade.pk])


def delete_url(grade):
    return reverse("admin:facilities_grade_delete", args=[grade.pk])


def grade_of(site, name="一级", limit_fen=40_000, festival_fen=None):
    return Grade.objects.create(
        facility=site.facility,
        name=name,
        spending_limit_fen=limit_fen,
        festival_spending_limit_fen=festival_fen,
    )


def limits_posted(site, **amounts):
    return {
        "facility": site.facility.pk,
        "name": "一级",
        "spending_period": "month",
        "spending_limit": "",
        "festival_spending_limit": "",
        **amounts,
    }


def entries_for(model, pk):
    return LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(model), object_pk=str(pk)
    ).order_by("timestamp", "pk")


# --- who may change a grade --------------------------------------------------------------


def test_a_facility_administrator_raises_a_grade_s_limits_typed_in_yuan_stored_in_fen(
    client, site_a
):
    grade = grade_of(site_a, limit_fen=40_000)
    client.force_login(site_a.staff["facility_admin"])
    page = client.get(change_url(grade))
    assert page.status_code == 200 and 'value="400.00"' in page.content.decode()

    saved = client.post(
        change_url(grade),
        limits_posted(site_a, spending_limit="500", festival_spending_limit="1,200.50"),
    )

    assert saved.status_code == 302, saved.context["adminform"].form.errors
    grade.refresh_from_db()
    assert (grade.spending_limit_fen, grade.festival_spending_limit_fen) == (50_000, 120_050)


def test_a_facility_administrator_adds_a_grade_only_for_their_own_facility(client, site_a, site_b):
    client.force_login(site_a.staff["facility_admin"])
    form = client.get(ADD_GRADE).context["adminform"].form
    assert list(form.fields["facility"].queryset) == [site_a.facility]

    refused = client.post(ADD_GRADE, limits_posted(site_b, spending_limit="600"))
    assert refused.status_code == 200
    assert "facility" in refused.context["adminform"].form.errors
    assert not Grade.objects.exists()

    added = client.post(ADD_GRADE, limits_posted(site_a, spending_limit="600"))
    assert added.status_code == 302
    assert Grade.objects.values_list("facility_id", "spending_limit_fen").get() == (
        site_a.facility.pk,
        60_000,
    )


def test_another_facility_s_grade_is_a_404_and_stays_as_it_was(client, site_a, site_b):
    ours, theirs = grade_of(site_a, name="Ours"), grade_of(site_b, name="Theirs")
    client.force_login(site_a.staff["facility_admin"])

    listing = client.get(GRADES).content.decode()
    assert "Ours" in listing and "Theirs" not in listing and site_b.facility.name not in listing
    for view in ("change", "delete", "history"):
        url = reverse(f"admin:facilities_grade_{view}", args=[theirs.pk])
        assert client.get(url).status_code == 404, view
    posted = client.post(change_url(theirs), limits_posted(site_b, spending_limit="9,999"))
    assert posted.status_code == 404
    assert client.post(delete_url(theirs), {"post": "yes"}).status_code == 404

    theirs.refresh_from_db()
    assert theirs.spending_limit_fen == 40_000
    assert Grade.objects.filter(pk__in=[ours.pk, theirs.pk]).count() == 2


def test_a_grade_never_moves_to_another_facility(client, site_a, site_b):
    """The facility of a saved grade is fixed: its inmates are of that facility."""
    from tests.factories import StaffFactory

    grade = grade_of(site_a)
    client.force_login(StaffFactory(is_superuser=True))
    client.post(change_url(grade), limits_posted(site_b, spending_limit="400"))
    grade.refresh_from_db()
    assert grade.facility_id == site_a.facility.pk


def test_a_name_already_used_at_the_facility_is_refused_on_the_form(client, site_a):
    grade_of(site_a, name="一级")
    second = grade_of(site_a, name="二级")
    client.force_login(site_a.staff["facility_admin"])
    answer = client.post(change_url(second), limits_posted(site_a, spending_limit="400"))
    assert answer.status_code == 200
    assert answer.context["adminform"].form.errors
    second.refresh_from_db()
    assert second.name == "二级"


@pytest.mark.parametrize("role", ("clerk", "auditor", "trust_officer"))
def test_other_roles_read_a_grade_s_limits_in_yuan_but_cannot_change_them(client, site_a, role):
    grade = grade_of(site_a, limit_fen=40_000, festival_fen=60_000)
    client.force_login(site_a.staff[role])
    page = client.get(change_url(grade), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "¥400.00" in page.content.decode() and "¥600.00" in page.content.decode()
    assert client.get(ADD_GRADE).status_code == 403

    changed = client.post(change_url(grade), limits_posted(site_a, spending_limit="9,999"))
    deleted = client.post(delete_url(grade), {"post": "yes"})

    assert (changed.status_code, deleted.status_code) == (403, 403)
    grade.refresh_from_db()
    assert grade.spending_limit_fen == 40_000


@pytest.mark.parametrize("role", ("clerk", "auditor", "trust_officer"))
def test_other_roles_read_festival_months_but_cannot_change_them(client, site_a, role):
    festival = FestivalMonth.objects.create(
        facility=site_a.facility, month=dt.date(2027, 2, 1), name="春节"
    )
    url = reverse("admin:facilities_festivalmonth_change", args=[festival.pk])
    client.force_login(site_a.staff[role])
    assert (
        "春节" in client.get(reverse("admin:facilities_festivalmonth_changelist")).content.decode()
    )
    answer = client.post(
        url, {"facility": site_a.facility.pk, "month": "2027-03", "name": "changed"}
    )
    assert answer.status_code == 403
    festival.refresh_from_db()
    assert (festival.month, festival.name) == (dt.date(2027, 2, 1), "春节")


# --- deleting a grade ----------------------------------------------------------------------


def test_deleting_a_grade_inmates_hold_is_refused_readably_and_deletes_nothing(client, site_a):
    grade = grade_of(site_a)
    facility_services.assign_grade(inmate_id=site_a.inmate.pk, grade_id=grade.pk)
    client.force_login(site_a.staff["facility_admin"])

    for language, refusal in (
        ("en", "1 inmate holds the grade 一级: give them another grade before deleting it."),
        ("zh-hans", "有 1 名在押人员持有管理等级“一级”：请先为其更换管理等级，再删除。"),
    ):
        page = client.get(delete_url(grade), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert refusal in page
        assert site_a.inmate.inmate_number in page  # who holds it
        assert 'name="post"' not in page  # nothing to confirm

    confirmed = client.post(delete_url(grade), {"post": "yes"}, HTTP_ACCEPT_LANGUAGE="en")

    assert confirmed.status_code == 200
    assert "give them another grade" in confirmed.content.decode()
    assert Grade.objects.filter(pk=grade.pk).exists()
    assert Inmate.objects.get(pk=site_a.inmate.pk).grade_id == grade.pk


def test_an_inmate_given_the_grade_after_the_page_checked_still_stops_the_delete(
    client, site_a, monkeypatch
):
    """The page's own check and the delete are not one lock: the service checks again under
    the grade's lock and the page says why, in the staff member's language."""
    from facilities.admin.grades import GradeAdmin

    grade = grade_of(site_a)
    facility_services.assign_grade(inmate_id=site_a.inmate.pk, grade_id=grade.pk)
    page_check = GradeAdmin.get_deleted_objects

    def checked_before_the_inmate_was_given_it(self, objs, request):
        to_delete, model_count, perms_needed, _protected = page_check(self, objs, request)
        return to_delete, model_count, perms_needed, []

    monkeypatch.setattr(GradeAdmin, "get_deleted_objects", checked_before_the_inmate_was_given_it)
    client.force_login(site_a.staff["facility_admin"])

    answer = client.post(delete_url(grade), {"post": "yes"}, HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert answer.status_code == 302 and answer.url == change_url(grade)
    shown = " ".join(str(message) for message in answer.wsgi_request._messages)
    assert "等级" in shown and grade.name in shown
    assert Grade.objects.filter(pk=grade.pk).exists()
    assert not LogEntry.objects.filter(action=LogEntry.Action.DELETE).exists()


def test_a_grade_nobody_holds_is_deleted_and_the_delete_is_audited(client, site_a):
    grade = grade_of(site_a)
    admin = site_a.staff["facility_admin"]
    client.force_login(admin)
    assert client.post(delete_url(grade), {"post": "yes"}).status_code == 302
    assert not Grade.objects.filter(pk=grade.pk).exists()
    deleted = entries_for(Grade, grade.pk).get(action=LogEntry.Action.DELETE)
    assert deleted.actor == admin
    assert deleted.additional_data["facility_id"] == site_a.facility.pk


def test_grades_have_no_bulk_delete_action(client, site_a):
    grade_of(site_a)
    client.force_login(site_a.staff["facility_admin"])
    assert 'value="delete_selected"' not in client.get(GRADES).content.decode()


# --- the audit trail -----------------------------------------------------------------------


def test_raising_a_limit_is_audited_with_the_person_the_facility_and_the_amounts(client, site_a):
    grade = grade_of(site_a, limit_fen=40_000)
    admin = site_a.staff["facility_admin"]
    client.force_login(admin)
    client.post(change_url(grade), limits_posted(site_a, spending_limit="500"))

    entry = entries_for(Grade, grade.pk).last()
    assert entry.action == LogEntry.Action.UPDATE and entry.actor == admin
    assert entry.changes["spending_limit_fen"] == [40_000, 50_000]  # fen, as stored
    assert entry.additional_data["facility_id"] == site_a.facility.pk
    assert entry.remote_addr == "127.0.0.1"


def test_a_new_grade_is_audited_too(client, site_a):
    admin = site_a.staff["facility_admin"]
    client.force_login(admin)
    client.post(ADD_GRADE, limits_posted(site_a, spending_limit="600"))
    grade = Grade.objects.get()
    entry = entries_for(Grade, grade.pk).get()
    assert entry.action == LogEntry.Action.CREATE and entry.actor == admin
    assert entry.additional_data["facility_id"] == site_a.facility.pk


def test_a_festival_month_change_is_audited_with_the_person_and_the_facility(client, site_a):
    admin = site_a.staff["facility_admin"]
    client.force_login(admin)
    client.post(
        reverse("admin:facilities_festivalmonth_add"),
        {"facility": site_a.facility.pk, "month": "2027-02", "name": "春节"},
    )
    festival = FestivalMonth.objects.get()
    client.post(
        reverse("admin:facilities_festivalmonth_change", args=[festival.pk]),
        {"facility": site_a.facility.pk, "month": "2027-10", "name": "国庆"},
    )

    created, changed = entries_for(FestivalMonth, festival.pk)
    assert (created.action, changed.action) == (LogEntry.Action.CREATE, LogEntry.Action.UPDATE)
    assert {created.actor, changed.actor} == {admin}
    assert changed.changes["month"] == ["2027-02-01", "2027-10-01"]
    assert {created.additional_data["facility_id"], changed.additional_data["facility_id"]} == {
        site_a.facility.pk
    }


def test_an_inmate_s_new_grade_is_audited_with_the_person_and_the_facility(client, site_a):
    grade = grade_of(site_a)
    clerk = site_a.staff["clerk"]
    client.force_login(clerk)
    inmate = site_a.inmate
    answer = client.post(
        reverse("admin:catalog_inmatecommissary_change", args=[inmate.pk]),
        {
            "grade": grade.pk,
            "commissary_restrictions-TOTAL_FORMS": "0",
            "commissary_restrictions-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302

    entry = entries_for(Inmate, inmate.pk).last()
    assert entry.action == LogEntry.Action.UPDATE and entry.actor == clerk
    assert entry.changes == {"grade": [None, grade.pk]}  # the grade column only
    assert str(grade) in str(entry.changes_display_dict)  # shown by name
    assert entry.additional_data["facility_id"] == site_a.facility.pk


def test_auditors_see_their_facility_s_grade_entries_only(client, site_a, site_b):
    for site in (site_a, site_b):
        grade = grade_of(site, name=f"Grade {site.facility.code}")
        client.force_login(site.staff["facility_admin"])
        client.post(change_url(grade), limits_posted(site, name=grade.name, spending_limit="450"))
    client.force_login(site_a.staff["auditor"])
    listed = client.get("/admin/auditlog/logentry/").context["cl"].result_list
    reprs = {entry.object_repr for entry in listed}
    assert "alpha / Grade alpha" in reprs and "bravo / Grade bravo" not in reprs
