"""The disputes queue in the admin: clerks and facility administrators of the facility see it
oldest first with the order, its pick history and the inmate's other disputes, and decide;
other facilities' disputes answer 404; an auditor may look but not decide; every decision is
in the audit trail."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from auditlog.models import LogEntry
from django.urls import reverse

from catalog.models import Dispute
from catalog.services import disputes
from ledger.selectors import inmate_balance
from tests.admin.conftest import make_site
from tests.catalog.disputes_helpers import delivered_order

pytestmark = pytest.mark.django_db
DELIVERED = dt.datetime(2026, 12, 1, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _disputed(site, key):
    order, line, inmate, device, _ = delivered_order(delivered_at=DELIVERED, facility=site.facility)
    return disputes.file_dispute(
        inmate_id=inmate.pk,
        device_id=device.pk,
        order_id=order.pk,
        line_id=line.pk,
        reason="missing",
        text="Nothing came",
        idempotency_key=key,
        now=DELIVERED + dt.timedelta(days=1),
    )


@pytest.fixture
def sites():
    return make_site("alpha"), make_site("bravo")


def test_the_queue_is_scoped_and_oldest_first(client, sites):
    a, b = sites
    first, second, theirs = _disputed(a, "a1"), _disputed(a, "a2"), _disputed(b, "b1")
    Dispute.objects.filter(pk=second.pk).update(created_at=first.created_at - dt.timedelta(1))
    client.force_login(a.staff["clerk"])
    listed = client.get(reverse("admin:catalog_dispute_changelist")).context["cl"].result_list
    assert [dispute.pk for dispute in listed] == [second.pk, first.pk]
    theirs_url = reverse("admin:catalog_dispute_change", args=[theirs.pk])
    assert client.get(theirs_url).status_code == 404
    decide = reverse("admin:catalog_dispute_decide", args=[theirs.pk])
    assert client.post(decide, {"decision": "reject", "answer": "x"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "open"


@pytest.mark.parametrize("role", ["clerk", "facility_admin"])
def test_a_clerk_or_facility_administrator_refunds_part_of_a_line(client, sites, role):
    a, _ = sites
    dispute = _disputed(a, "a1")
    before = inmate_balance(inmate=dispute.inmate).spendable_fen
    client.force_login(a.staff[role])
    page = client.get(reverse("admin:catalog_dispute_change", args=[dispute.pk]))
    text = page.content.decode()
    assert page.status_code == 200 and "Nothing came" in text and "¥13.50" in text
    decided = client.post(
        reverse("admin:catalog_dispute_decide", args=[dispute.pk]),
        {"decision": "refund", "refund": "4.50", "answer": "One packet was missing"},
    )
    assert decided.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.refund_fen) == ("refunded", 450)
    assert inmate_balance(inmate=dispute.inmate).spendable_fen == before + 450
    again = client.post(
        reverse("admin:catalog_dispute_decide", args=[dispute.pk]),
        {"decision": "refund", "refund": "4.50", "answer": "again"},
    )
    assert again.status_code in (200, 403)
    assert inmate_balance(inmate=dispute.inmate).spendable_fen == before + 450
    entry = LogEntry.objects.get_for_object(dispute).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == a.staff[role] and entry.changes_dict["status"] == ["open", "refunded"]


def test_an_auditor_sees_the_queue_but_cannot_decide(client, sites):
    a, _ = sites
    dispute = _disputed(a, "a1")
    client.force_login(a.staff["auditor"])
    assert client.get(reverse("admin:catalog_dispute_change", args=[dispute.pk])).status_code == 200
    refused = client.post(
        reverse("admin:catalog_dispute_decide", args=[dispute.pk]),
        {"decision": "reject", "answer": "No"},
    )
    assert refused.status_code == 403
    dispute.refresh_from_db()
    assert dispute.status == "open"


def test_the_report_gives_dispute_and_refund_rates_and_time_to_decide(client, sites):
    a, b = sites
    dispute = _disputed(a, "a1")
    _disputed(b, "b1")
    disputes.decide_dispute(
        dispute_id=dispute.pk,
        decision="refund",
        refund_fen=450,
        answer="Sorry",
        staff_id=a.staff["clerk"].pk,
        now=dispute.created_at + dt.timedelta(hours=6),
    )
    client.force_login(a.staff["facility_admin"])
    page = client.get(reverse("admin:catalog_dispute_report"), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    by_product = dict(page.context["tables"])["By product"]
    assert len(by_product) == 1  # the other facility's dispute is not counted
    row = by_product[0]
    assert (row.lines, row.disputes, row.refunded_fen, row.sales_fen) == (1, 1, 450, 1_350)
    assert (row.dispute_rate, row.refund_rate, row.in_time, row.hours_to_decide) == (
        "100.0%",
        "33.33%",
        "1/1",
        6.0,
    )
    by_staff = dict(page.context["tables"])["By staff member who decided"]
    assert [r.disputes for r in by_staff] == [1]
