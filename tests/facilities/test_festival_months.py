"""Festival months and festival limits as facility policy: a festival limit is at least the
usual limit and needs one (the model's check for staff, a CHECK constraint behind it); a
festival month is the 1st of its month, once per facility; staff declare them in the admin,
typed as a month, and only for their own facilities; the grade page takes the limit in yuan."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import translation

from facilities.models import FestivalMonth, Grade
from tests.admin.conftest import make_site
from tests.factories import FacilityFactory, StaffFactory

pytestmark = pytest.mark.django_db
FESTIVAL_MONTHS = reverse("admin:facilities_festivalmonth_changelist")
ADD_FESTIVAL_MONTH = reverse("admin:facilities_festivalmonth_add")


@pytest.fixture
def site_a():
    return make_site("alpha")


@pytest.fixture
def site_b():
    return make_site("bravo")


def _grade(**limits) -> Grade:
    return Grade(facility=FacilityFactory(), name="一级", **limits)


# --- the rule and its constraints ------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (
            {"spending_limit_fen": 50_000, "festival_spending_limit_fen": 40_000},
            "The festival-month limit is at least the usual limit (¥500.00).",
        ),
        (
            {"spending_limit_fen": None, "festival_spending_limit_fen": 40_000},
            "A festival-month limit needs a usual spending limit",
        ),
    ],
    ids=["below-the-usual-limit", "without-a-usual-limit"],
)
def test_a_festival_limit_below_or_without_the_usual_limit_is_refused_readably(limits, message):
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        _grade(**limits).full_clean()
    assert message in " ".join(refused.value.message_dict["festival_spending_limit_fen"])


def test_the_refusal_reads_in_chinese_too():
    grade = _grade(spending_limit_fen=50_000, festival_spending_limit_fen=40_000)
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        grade.full_clean()
    assert refused.value.message_dict["festival_spending_limit_fen"] == [
        "节日月份限额不得低于平时限额（¥500.00）。"
    ]


@pytest.mark.parametrize(
    "limits",
    [
        {"spending_limit_fen": 50_000, "festival_spending_limit_fen": 40_000},
        {"spending_limit_fen": None, "festival_spending_limit_fen": 40_000},
        {"spending_limit_fen": 0, "festival_spending_limit_fen": -1},
    ],
    ids=["below-the-usual-limit", "without-a-usual-limit", "negative"],
)
def test_the_database_refuses_what_the_model_check_refuses(limits):
    grade = _grade(spending_limit_fen=50_000)
    grade.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        Grade.objects.filter(pk=grade.pk).update(**limits)


def test_a_festival_limit_equal_to_or_above_the_usual_limit_is_accepted():
    for festival_fen in (50_000, 70_000, None):
        grade = _grade(spending_limit_fen=50_000, festival_spending_limit_fen=festival_fen)
        grade.full_clean()
        grade.save()


def test_a_festival_month_is_the_first_of_its_month_once_per_facility():
    facility = FacilityFactory()
    FestivalMonth.objects.create(facility=facility, month=dt.date(2027, 2, 1), name="春节")
    with pytest.raises(IntegrityError), transaction.atomic():
        FestivalMonth.objects.create(facility=facility, month=dt.date(2027, 3, 15), name="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        FestivalMonth.objects.create(facility=facility, month=dt.date(2027, 2, 1), name="again")
    FestivalMonth.objects.create(facility=FacilityFactory(), month=dt.date(2027, 2, 1), name="春节")


# --- the admin -------------------------------------------------------------------------


def test_staff_see_and_change_only_their_own_facility_s_festival_months(client, site_a, site_b):
    ours = FestivalMonth.objects.create(
        facility=site_a.facility, month=dt.date(2027, 2, 1), name="Ours"
    )
    theirs = FestivalMonth.objects.create(
        facility=site_b.facility, month=dt.date(2027, 2, 1), name="Theirs"
    )
    client.force_login(site_a.staff["facility_admin"])

    listing = client.get(FESTIVAL_MONTHS).content.decode()
    assert "Ours" in listing and "2027-02" in listing
    assert "Theirs" not in listing and site_b.facility.name not in listing
    assert (
        client.get(reverse("admin:facilities_festivalmonth_change", args=[ours.pk])).status_code
        == 200
    )
    for view in ("change", "delete", "history"):
        url = reverse(f"admin:facilities_festivalmonth_{view}", args=[theirs.pk])
        assert client.get(url).status_code == 404


def test_staff_cannot_add_a_festival_month_for_another_facility(client, site_a, site_b):
    client.force_login(site_a.staff["facility_admin"])
    form = client.get(ADD_FESTIVAL_MONTH).context["adminform"].form
    assert list(form.fields["facility"].queryset) == [site_a.facility]

    answer = client.post(
        ADD_FESTIVAL_MONTH, {"facility": site_b.facility.pk, "month": "2027-02", "name": "春节"}
    )
    assert answer.status_code == 200  # the form comes back with an error
    assert "facility" in answer.context["adminform"].form.errors
    assert not FestivalMonth.objects.exists()


def test_a_clerk_may_not_declare_festival_months(client, site_a):
    client.force_login(site_a.staff["clerk"])
    assert client.get(ADD_FESTIVAL_MONTH).status_code == 403


@pytest.mark.parametrize("typed", ["2027-02", "2027-02-17"])
def test_a_festival_month_is_typed_as_a_month_and_stored_as_its_first_day(client, site_a, typed):
    client.force_login(site_a.staff["facility_admin"])
    answer = client.post(
        ADD_FESTIVAL_MONTH, {"facility": site_a.facility.pk, "month": typed, "name": "春节"}
    )
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    assert FestivalMonth.objects.get().month == dt.date(2027, 2, 1)

    again = client.post(
        ADD_FESTIVAL_MONTH, {"facility": site_a.facility.pk, "month": "2027-02", "name": "again"}
    )
    assert again.status_code == 200
    assert FestivalMonth.objects.count() == 1


def test_the_grade_page_takes_the_festival_limit_in_yuan_and_stores_fen(client):
    facility = FacilityFactory()
    grade = Grade.objects.create(facility=facility, name="一级", spending_limit_fen=80_000)
    url = reverse("admin:facilities_grade_change", args=[grade.pk])
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'name="festival_spending_limit"' in page and "节日月份消费限额" in page
    fields = {"facility": facility.pk, "name": "一级", "spending_period": "month"}

    saved = client.post(
        url, {**fields, "spending_limit": "800", "festival_spending_limit": "1,000.50"}
    )
    assert saved.status_code == 302
    grade.refresh_from_db()
    assert (grade.spending_limit_fen, grade.festival_spending_limit_fen) == (80_000, 100_050)
    listing = client.get(reverse("admin:facilities_grade_changelist")).content.decode()
    assert "¥1,000.50" in listing

    below = client.post(
        url,
        {**fields, "spending_limit": "800", "festival_spending_limit": "600"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert below.status_code == 200
    errors = below.context["adminform"].form.errors
    assert "at least the usual limit (¥800.00)" in " ".join(errors["festival_spending_limit"])
    without_usual = client.post(
        url, {**fields, "spending_limit": "", "festival_spending_limit": "600"}
    )
    assert "festival_spending_limit" in without_usual.context["adminform"].form.errors
    grade.refresh_from_db()
    assert (grade.spending_limit_fen, grade.festival_spending_limit_fen) == (80_000, 100_050)

    assert (
        client.post(
            url, {**fields, "spending_limit": "800", "festival_spending_limit": ""}
        ).status_code
        == 302
    )
    grade.refresh_from_db()
    assert grade.festival_spending_limit_fen is None
