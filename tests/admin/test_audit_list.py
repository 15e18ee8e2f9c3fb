"""The auditor's view of the trail: filtered by facility, person, object type and date, within
their facilities only; exported as CSV (UTF-8 with a BOM, formula-looking cells neutralised);
values in words and yuan, in the reader's language."""

import csv
import io

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import translation

from accounts import audit, audit_display
from accounts.audit_export import safe_cell
from facilities.models import Grade
from tests.catalog.helpers import grade_at
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
LIST = "/admin/auditlog/logentry/"
EXPORT = "/admin/auditlog/logentry/export.csv"


@pytest.fixture
def trail(client, site_a, site_b):
    """An inmate renamed and a grade's limit lowered at each facility, by its administrator."""
    grades = {}
    for site in (site_a, site_b):
        grade = grade_at(site.facility, limit_fen=70_000, name=f"Grade {site.facility.code}")
        client.force_login(site.staff["facility_admin"])
        client.post(
            f"/admin/facilities/inmate/{site.inmate.pk}/change/",
            {"surname": f"Renamed{site.facility.code}", "given_name": "", "housing_unit": ""},
        )
        with audit.acting_as(site.staff["facility_admin"]):
            grade.spending_limit_fen = 45_000
            grade.save()
        grades[site.facility.code] = grade
    client.logout()
    return grades


def _listed(client, **filters):
    return list(client.get(LIST, filters).context["cl"].result_list)


def test_the_list_filters_by_facility_person_type_and_date(client, site_a, site_b, trail):
    client.force_login(site_b.staff["auditor"])
    facility_b = {e.additional_data.get("facility_id") for e in _listed(client)}
    assert facility_b == {site_b.facility.pk}
    by_person = _listed(client, actor=site_b.staff["facility_admin"].pk)
    assert by_person and {e.actor for e in by_person} == {site_b.staff["facility_admin"]}
    grade_type = ContentType.objects.get_for_model(Grade).pk
    grades = _listed(client, type=grade_type)
    assert grades and {e.content_type_id for e in grades} == {grade_type}
    assert {e.object_pk for e in grades} == {str(trail["bravo"].pk)}
    # As the date filter's links send them: instants with their offset, never naive.
    since, until = "2000-01-01 00:00:00+08:00", "2999-01-01 00:00:00+08:00"
    today = _listed(client, **{"timestamp__gte": since, "timestamp__lt": until})
    assert len(today) == len(_listed(client))
    assert _listed(client, **{"timestamp__gte": until}) == []
    # Another facility asked for by hand: nothing of it.
    assert _listed(client, facility=site_a.facility.pk) == []


def test_the_object_type_filter_names_types_in_the_reader_s_language(client, site_a, trail):
    client.force_login(site_a.staff["auditor"])
    page = client.get(LIST, headers={"accept-language": "zh-hans"}).content.decode()
    assert "在押人员" in page


def _csv_rows(answer):
    body = b"".join(answer.streaming_content)
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_the_export_is_the_filtered_list_in_words_with_a_bom(client, site_a, trail):
    client.force_login(site_a.staff["auditor"])
    grade_type = ContentType.objects.get_for_model(Grade).pk
    answer = client.get(EXPORT, {"type": grade_type}, headers={"accept-language": "en"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    header, *rows = _csv_rows(answer)
    assert header[:3] == ["Time", "Facility", "Person"]
    assert len(rows) == 2  # the grade's creation and its lowered limit, at this facility only
    assert all(row[1] == site_a.facility.name for row in rows)
    assert rows[0][2] == site_a.staff["facility_admin"].username
    assert "Spending limit: ¥700.00 → ¥450.00" in rows[0][7]


def test_the_export_neutralises_formulas(client, site_a):
    client.post("/admin/login/", {"username": "=cmd|'/C calc'!A0", "password": "x"})
    client.force_login(StaffFactory(is_superuser=True))
    header, *rows = _csv_rows(client.get(EXPORT, {"event": audit.FAILED_SIGN_IN}))
    assert [row[6] for row in rows] == ["'=cmd|'/C calc'!A0"]
    assert [safe_cell(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "\rx", "ok", "1-2")] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "'\tx",
        "'\rx",
        "ok",
        "1-2",
    ]


def test_the_export_needs_the_view_permission_and_stays_in_scope(client, site_a, site_b, trail):
    client.force_login(site_a.staff["clerk"])  # no audit trail for clerks
    assert client.get(EXPORT).status_code == 403
    client.force_login(site_a.staff["auditor"])
    header, *rows = _csv_rows(client.get(EXPORT, {"facility": site_b.facility.pk}))
    assert rows == []


def test_values_read_in_words_and_yuan_in_both_languages(site_a, trail):
    grade = trail["alpha"]
    entry = LogEntry.objects.get_for_object(grade).filter(action=LogEntry.Action.UPDATE).get()
    with translation.override("en"):
        assert audit_display.changes_text(entry) == "Spending limit: ¥700.00 → ¥450.00"
        assert audit_display.summary(entry) == "1 change: Spending limit"
    with translation.override("zh-hans"):
        assert audit_display.changes_text(entry) == "消费限额：¥700.00 → ¥450.00"
        assert audit_display.summary(entry) == "1 项变更：消费限额"


def test_choices_and_related_objects_read_as_their_names(client, site_a):
    grade = grade_at(site_a.facility, limit_fen=10_000, name="Lenient")
    client.force_login(site_a.staff["clerk"])
    with audit.acting_as(site_a.staff["clerk"]):
        from facilities import services

        services.assign_grade(inmate_id=site_a.inmate.pk, grade_id=grade.pk)
    entry = LogEntry.objects.get_for_object(site_a.inmate).latest("pk")
    with translation.override("en"):
        assert audit_display.changes_text(entry).startswith("Grade: — → ")
        assert "Lenient" in audit_display.changes_text(entry)


def test_the_detail_page_shows_the_changes_in_chinese(client, site_a, trail):
    grade = trail["alpha"]
    entry = LogEntry.objects.get_for_object(grade).filter(action=LogEntry.Action.UPDATE).get()
    client.force_login(site_a.staff["auditor"])
    page = client.get(f"{LIST}{entry.pk}/change/", headers={"accept-language": "zh-hans"})
    text = page.content.decode()
    assert "消费限额" in text and "<td>¥700.00</td><td>¥450.00</td>" in text
    assert "spending_limit_fen" not in text


def test_the_entry_page_shows_its_time_formatted_in_local_time_like_the_list(client, site_a):
    """The entry's page printed the raw datetime (microseconds and offset); it reads as the
    list does, in the site's local time (Asia/Shanghai) and the reader's format."""
    import datetime as dt

    import time_machine

    grade = grade_at(site_a.facility, limit_fen=70_000, name="Grade alpha")
    instant = dt.datetime(2026, 3, 31, 16, 30, 5, 123456, tzinfo=dt.UTC)
    with time_machine.travel(instant, tick=False), audit.acting_as(site_a.staff["facility_admin"]):
        grade.spending_limit_fen = 45_000
        grade.save()
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(Grade), object_pk=str(grade.pk), action=1
    )
    client.force_login(site_a.staff["auditor"])
    for language, shown in (("en", "April 1, 2026, 12:30 a.m."), ("zh-hans", "2026年4月1日 00:30")):
        text = client.get(f"{LIST}{entry.pk}/change/", HTTP_ACCEPT_LANGUAGE=language)
        text = text.content.decode()
        assert shown in text, language
        assert "123456" not in text and "+00:00" not in text and "+08:00" not in text
        listing = client.get(LIST, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert shown in listing, language
