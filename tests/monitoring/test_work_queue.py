"""A security officer's admin home and daily digest list the held deposits waiting for a
decision at their facilities (count, oldest, a link to the review list), and those undecided
past the facility's attention deadline; nobody without the right to decide sees them."""

import datetime as dt

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from accounts.roles import SECURITY_OFFICER, TRUST_OFFICER, assign_role
from monitoring.models import FacilityMonitoring, Hold, Rule
from reports import digest
from reports.work_queue import work_queue_for
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

from .helpers import paid, rule_at

pytestmark = pytest.mark.django_db

REVIEW_LIST = "/admin/monitoring/hold/?state__exact=pending"


def officer_at(facility, role=SECURITY_OFFICER):
    officer = StaffFactory(facilities=[facility], email=f"{facility.code}@prison.example")
    assign_role(officer, role)
    return type(officer).objects.get(pk=officer.pk)


def watched_inmate(facility=None):
    inmate = InmateFactory(facility=facility or FacilityFactory())
    rule_at(inmate.facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    return inmate


def held(client, inmate, amount_fen, *, days_ago=0):
    payment = paid(client, inmate, amount_fen)
    hold = Hold.objects.get(deposit_id=payment.deposit_id)
    if days_ago:
        hold.created_at = timezone.now() - dt.timedelta(days=days_ago, minutes=1)
        hold.save(update_fields=["created_at"])
    return hold


def queue(user) -> dict:
    return {line.key: line for line in work_queue_for(user)}


def test_held_deposits_wait_for_the_security_officer_of_their_facility(client):
    inmate = watched_inmate()
    elsewhere = watched_inmate()
    oldest = held(client, inmate, 10_000, days_ago=2)
    held(client, inmate, 20_000)
    held(client, elsewhere, 30_000, days_ago=5)
    decided = held(client, inmate, 40_000, days_ago=9)
    Hold.objects.filter(pk=decided.pk).update(state=Hold.State.ACCEPTED, decided_at=timezone.now())

    lines = queue(officer_at(inmate.facility))
    to_review = lines["holds_to_review"]
    assert (to_review.count, to_review.oldest) == (2, oldest.created_at)
    assert to_review.url == REVIEW_LIST
    # the default deadline is three days: the two-day-old hold does not need attention yet
    assert lines["holds_needing_attention"].count == 0


def test_needing_attention_follows_each_facility_s_deadline(client):
    strict = watched_inmate()
    FacilityMonitoring.objects.create(facility=strict.facility, attention_days=1, refund_days=5)
    lenient = watched_inmate()
    late = held(client, strict, 10_000, days_ago=1)
    held(client, strict, 20_000)
    held(client, lenient, 30_000, days_ago=2)  # under the default three days
    overdue = held(client, lenient, 40_000, days_ago=3)
    officer = officer_at(strict.facility)
    officer.facility_assignments.create(facility=lenient.facility)

    lines = queue(type(officer).objects.get(pk=officer.pk))
    assert lines["holds_to_review"].count == 4
    attention = lines["holds_needing_attention"]
    assert attention.count == 2
    assert attention.oldest == min(late.created_at, overdue.created_at)


def test_only_who_may_decide_sees_the_review_queue(client):
    inmate = watched_inmate()
    held(client, inmate, 10_000)
    trust_officer = officer_at(inmate.facility, TRUST_OFFICER)
    assert "holds_to_review" not in queue(trust_officer)
    client.force_login(trust_officer)
    assert "Deposits to review" not in client.get("/admin/").content.decode()

    officer = officer_at(inmate.facility)
    client.force_login(officer)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "待审核的汇款" in page
    assert 'href="/admin/monitoring/hold/?state__exact=pending"' in page


def test_the_queues_stay_one_statement_with_the_review_queue(client, django_assert_num_queries):
    inmate = watched_inmate()
    held(client, inmate, 10_000, days_ago=4)
    officer = officer_at(inmate.facility)
    officer.get_all_permissions()
    with django_assert_num_queries(2):  # the facility ids, then every queue at once
        lines = {line.key: line.count for line in work_queue_for(officer)}
    assert (lines["holds_to_review"], lines["holds_needing_attention"]) == (1, 1)


def test_the_digest_tells_the_security_officer_what_waits(client):
    cache.clear()
    inmate = watched_inmate()
    held(client, inmate, 10_000, days_ago=4)
    officer = officer_at(inmate.facility)
    mail.outbox.clear()
    assert digest.send_staff_digest(user_id=officer.pk) is True
    body = mail.outbox[0].body
    assert "- Deposits to review: 1" in body
    assert "- Deposits to review needing attention: 1" in body
    assert "http://127.0.0.1:8000" + REVIEW_LIST in body
    cache.clear()
