"""The admin home of each role opens on what waits for that role at its facilities: counts,
the oldest item's age, and links to the lists where the work is done. A money request never
waits for the officer who asked for it; another facility's work is never counted; the model
list stays one click away; the scheduler's tables are for superusers only."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import DepositorLink
from accounts.roles import TRUST_OFFICER, assign_role
from catalog import services as catalog_services
from commissary.errors import DomainError
from facilities import services as facility_services
from ledger import services
from ledger.models import ReconciliationFinding, ScheduledRun, StaffRequest
from reports.work_queue import work_queue_for
from tests.catalog.helpers import order_from_kiosk, product_at
from tests.factories import StaffFactory
from tests.ledger.helpers import deposit, key

from .conftest import make_site

pytestmark = pytest.mark.django_db


def queue(user) -> dict:
    return {line.key: line for line in work_queue_for(user)}


def credit_request(site, officer="trust_officer", amount_fen=5_000):
    """A credit always needs a second trust officer: it waits."""
    return services.request_money_action(
        kind=StaffRequest.Kind.CREDIT,
        inmate_id=site.inmate.pk,
        amount_fen=amount_fen,
        reason="Lost property compensation",
        staff_id=site.staff[officer].pk,
    )


def home(client, user, language="en"):
    client.force_login(user)
    return client.get("/admin/", HTTP_ACCEPT_LANGUAGE=language)


def test_a_money_request_waits_for_the_other_officer_never_for_the_one_who_asked(
    client, site_a, site_b
):
    asked = credit_request(site_a)
    credit_request(site_b)  # another facility's request is not theirs to approve

    other = queue(site_a.staff["trust_officer_2"])["money_requests"]
    assert (other.count, other.oldest) == (1, asked.requested_at)
    assert queue(site_a.staff["trust_officer"])["money_requests"].count == 0

    page = home(client, site_a.staff["trust_officer_2"]).content.decode()
    assert "Money requests waiting for your approval" in page
    assert 'href="/admin/ledger/staffrequest/?awaiting=you"' in page
    listed = client.get("/admin/ledger/staffrequest/", {"awaiting": "you"})
    assert list(listed.context["cl"].result_list) == [asked]

    client.force_login(site_a.staff["trust_officer"])
    own = client.get("/admin/ledger/staffrequest/", {"awaiting": "you"})
    assert list(own.context["cl"].result_list) == []


def test_a_superuser_is_asked_to_approve_only_where_assigned(site_a):
    credit_request(site_a)
    superuser = StaffFactory(is_superuser=True)
    assert queue(superuser)["money_requests"].count == 0
    assigned = StaffFactory(is_superuser=True, facilities=[site_a.facility])
    assert queue(assigned)["money_requests"].count == 1


def test_each_role_sees_only_the_queues_it_can_act_on(site_a):
    assert set(queue(site_a.staff["trust_officer"])) == {
        "money_requests",
        "family_links",
        "stuck_deposits",
        "findings",
    }
    assert set(queue(site_a.staff["facility_admin"])) == {"family_links", "findings"}
    assert set(queue(site_a.staff["auditor"])) == {"findings"}
    assert set(queue(site_a.staff["clerk"])) == {"orders_to_pick", "refused_orders", "low_stock"}


def test_family_links_waiting_for_a_decision_at_the_viewer_s_facilities(site_a, site_b):
    depositor = StaffFactory(is_staff=False)
    for site in (site_a, site_b):
        DepositorLink.objects.create(
            depositor=depositor,
            inmate=site.inmate,
            entered_inmate_number=site.inmate.inmate_number,
            entered_surname=site.inmate.surname,
        )
    line = queue(site_a.staff["facility_admin"])["family_links"]
    assert line.count == 1
    assert line.url == "/admin/accounts/depositorlink/?status__exact=pending"


def test_deposits_unpaid_past_their_reservation(client, site_a, site_b):
    long_ago = timezone.now() - dt.timedelta(hours=3)
    for site in (site_a, site_b):
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=site.inmate.pk,
            amount_fen=1_000,
            idempotency_key=key(),
            now=long_ago,
        )
    services.reserve_deposit(  # still inside its reservation: not stuck
        idempotency_scope="depositor:1",
        inmate_id=site_a.inmate.pk,
        amount_fen=2_000,
        idempotency_key=key(),
    )
    line = queue(site_a.staff["trust_officer"])["stuck_deposits"]
    assert line.count == 1 and line.oldest < timezone.now() - dt.timedelta(hours=2)
    client.force_login(site_a.staff["trust_officer"])
    listed = client.get(line.url)
    assert [d.amount_fen for d in listed.context["cl"].result_list] == [1_000]


def _reconciliation(facility, *, findings, started_at):
    run = ScheduledRun.objects.create(
        kind=ScheduledRun.Kind.RECONCILIATION,
        facility=facility,
        status=ScheduledRun.Status.FOUND_PROBLEMS if findings else ScheduledRun.Status.SUCCEEDED,
        started_at=started_at,
        finished_at=started_at,
    )
    for number in range(findings):
        ReconciliationFinding.objects.create(
            run=run,
            check_name="cached_balance",
            facility=facility,
            subject=f"account {number}",
            expected="1",
            actual="2",
        )
    return run


def test_open_findings_are_those_of_the_newest_reconciliation(site_a, site_b):
    now = timezone.now()
    _reconciliation(site_a.facility, findings=3, started_at=now - dt.timedelta(days=2))
    newest = _reconciliation(site_a.facility, findings=2, started_at=now - dt.timedelta(hours=5))
    _reconciliation(site_b.facility, findings=4, started_at=now)
    line = queue(site_a.staff["auditor"])["findings"]
    assert (line.count, line.oldest) == (2, newest.started_at)
    assert line.url == f"/admin/ledger/scheduledrun/{newest.pk}/change/"

    _reconciliation(site_a.facility, findings=0, started_at=now)
    assert queue(site_a.staff["auditor"])["findings"].count == 0


def test_the_clerk_s_queue_orders_to_pick_refusals_and_low_stock(client, site_a, site_b):
    deposit(site_a.inmate, 10_000)
    device, _ = facility_services.register_kiosk_device(facility=site_a.facility, name="K1")
    soap = product_at(site_a.facility, price_fen=500, stock=12)
    product_at(site_a.facility, price_fen=100, stock=3)  # running low already
    product_at(site_b.facility, price_fen=100, stock=0)  # another facility's shelf
    first = order_from_kiosk(site_a.inmate, device, soap, "order-1", quantity=2)
    order_from_kiosk(site_a.inmate, device, soap, "order-2", quantity=1)
    picked = order_from_kiosk(site_a.inmate, device, soap, "order-3", quantity=1)
    catalog_services.mark_order_picked(order_id=picked.pk, staff_id=site_a.staff["clerk"].pk)
    with pytest.raises(DomainError):  # too little stock: refused, and the refusal kept
        order_from_kiosk(site_a.inmate, device, soap, "order-4", quantity=10)

    lines = queue(site_a.staff["clerk"])
    assert (lines["orders_to_pick"].count, lines["orders_to_pick"].oldest) == (
        2,
        first.created_at,
    )
    assert lines["refused_orders"].count == 1
    assert lines["low_stock"].count == 2  # soap is down to 8, and the other to 3
    page = home(client, site_a.staff["clerk"]).content.decode()
    assert 'href="/admin/catalog/order/?status__exact=placed"' in page
    listed = client.get("/admin/catalog/order/", {"status__exact": "placed"})
    assert listed.context["cl"].result_count == 2
    assert client.get(lines["refused_orders"].url).context["cl"].result_count == 1
    assert client.get(lines["low_stock"].url).context["cl"].result_count == 2
    assert "Money requests" not in page


def test_an_empty_queue_says_so(client, site_a):
    page = home(client, site_a.staff["trust_officer"]).content.decode()
    assert "Nothing waits for you at your facilities." in page
    assert page.count('class="queue-count">none<') == 4


def test_the_home_page_reads_in_chinese(client, site_a):
    credit_request(site_a)
    page = home(client, site_a.staff["trust_officer_2"], "zh-hans").content.decode()
    assert "等待您审批的资金申请" in page
    assert "全部页面" in page


def test_the_queues_are_counted_in_one_statement_however_many_facilities(
    site_a, django_assert_num_queries
):
    officer = site_a.staff["trust_officer_2"]
    for _ in range(3):
        other = make_site(key("f"))
        other_officer = StaffFactory(facilities=[other.facility])
        assign_role(other_officer, TRUST_OFFICER)
        officer.facility_assignments.create(facility=other.facility)
        other.staff["trust_officer"] = other_officer
        credit_request(other)
    credit_request(site_a)
    officer = type(officer).objects.get(pk=officer.pk)  # no cached permissions
    officer.get_all_permissions()
    # the facility ids, then every queue at once
    with django_assert_num_queries(2):
        lines = work_queue_for(officer)
    assert {line.key: line.count for line in lines}["money_requests"] == 4


def test_the_model_list_is_one_click_away(client, site_a):
    page = home(client, site_a.staff["trust_officer"]).content.decode()
    assert 'href="/admin/models/"' in page
    models = client.get("/admin/models/").content.decode()
    assert "/admin/ledger/staffrequest/" in models


def test_the_scheduler_s_tables_are_for_superusers_only(client, site_a):
    client.force_login(site_a.staff["facility_admin"])
    assert "django_celery_beat" not in client.get("/admin/models/").content.decode()
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 403
    client.force_login(StaffFactory(is_superuser=True))
    models = client.get("/admin/models/").content.decode()
    assert "/admin/django_celery_beat/periodictask/" in models
    assert "/admin/axes/" in models
