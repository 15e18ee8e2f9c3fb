"""Disputes from the kiosk: POST orders/{id}/disputes for a delivered line of the inmate's own
order, within the facility's window (local days), one open per line, idempotent like orders;
listed under the order; staff decisions refund the line through the ledger once and never
above what was paid, replace, or reject with an answer the inmate sees."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from catalog.models import Dispute, LineRefund
from catalog.services import disputes
from commissary import errors
from ledger.selectors import inmate_balance
from tests.catalog.disputes_helpers import delivered_order
from tests.kiosk.conftest import Kiosk, error_of

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
DELIVERED = dt.datetime(2026, 12, 1, 18, 0, tzinfo=SHANGHAI)


@pytest.fixture
def shop():
    order, line, inmate, device, staff = delivered_order(delivered_at=DELIVERED)
    kiosk = Kiosk(inmate.facility)
    return order, line, inmate, kiosk, staff


def _file(kiosk, order, line, key="d-1", **body):
    return kiosk.post(
        f"orders/{order.pk}/disputes",
        {"line": line.pk, "reason": "damaged", "text": "Torn packet", **body},
        headers={"Idempotency-Key": key},
    )


def test_a_dispute_is_filed_listed_under_the_order_and_replayed(shop):
    order, line, inmate, kiosk, _ = shop
    with time_machine.travel(DELIVERED + dt.timedelta(days=2), tick=False):
        kiosk.sign_in(inmate)
        answer = _file(kiosk, order, line)
        assert answer.status_code == 201, answer.content
        body = answer.json()
        assert set(body) == {
            "id",
            "order",
            "line",
            "reason",
            "text",
            "status",
            "answer",
            "refunded",
            "created_at",
            "deadline",
        }
        assert (body["order"], body["line"], body["status"]) == (order.pk, line.pk, "open")
        assert body["deadline"] == "2026-12-18T00:00:00+08:00"  # 14 local days, end of day
        again = _file(kiosk, order, line)
        assert (again.status_code, again.json()) == (201, body)
        assert Dispute.objects.count() == 1
        conflict = _file(kiosk, order, line, reason="missing")
        assert conflict.status_code == 409 and error_of(conflict) == "idempotency_conflict"
        other_key = _file(kiosk, order, line, key="d-2", reason="missing")
        assert other_key.status_code == 409 and error_of(other_key) == "dispute_exists"
        detail = kiosk.get(f"orders/{order.pk}").json()
        assert detail["disputes"] == [body]
        assert detail["items"][0]["line_id"] == line.pk


def test_the_window_closes_at_the_end_of_the_last_local_day(shop):
    order, line, inmate, kiosk, _ = shop
    last_moment = dt.datetime(2026, 12, 15, 23, 59, 59, tzinfo=SHANGHAI)
    with time_machine.travel(last_moment + dt.timedelta(seconds=1), tick=False):
        kiosk.sign_in(inmate)
        closed = _file(kiosk, order, line, key="late")
        assert closed.status_code == 422 and error_of(closed) == "dispute_window_closed"
    with time_machine.travel(last_moment, tick=False):
        kiosk.sign_in(inmate)
        assert _file(kiosk, order, line, key="in-time").status_code == 201


def test_another_inmate_s_order_an_undelivered_order_and_bad_bodies_are_refused(shop):
    from tests.catalog.helpers import order_from_kiosk, product_at
    from tests.factories import InmateFactory

    order, line, inmate, kiosk, _ = shop
    other = InmateFactory(facility=inmate.facility)
    kiosk.sign_in(other)
    assert error_of(_file(kiosk, order, line, key="x")) == "not_found"
    kiosk.sign_in(inmate)
    from tests.catalog.helpers import funded

    funded(inmate, 1_000)
    placed = order_from_kiosk(inmate, kiosk.device, product_at(inmate.facility), "p2")
    waiting = _file(kiosk, placed, placed.items.get(), key="y")
    assert waiting.status_code == 422 and error_of(waiting) == "order_not_delivered"
    for bad in ({"reason": "bored"}, {"reason": "other", "text": ""}, {"extra": 1}):
        refused = _file(kiosk, order, line, key="z", **bad)
        assert refused.status_code == 400 and error_of(refused) == "validation_error"
    missing_key = kiosk.post(f"orders/{order.pk}/disputes", {"line": line.pk, "reason": "damaged"})
    assert missing_key.status_code == 400
    assert not Dispute.objects.exists()


def _dispute(shop):
    order, line, inmate, kiosk, staff = shop
    return disputes.file_dispute(
        inmate_id=inmate.pk,
        device_id=kiosk.device.pk,
        order_id=order.pk,
        line_id=line.pk,
        reason="missing",
        idempotency_key="k",
        now=DELIVERED + dt.timedelta(days=1),
    )


def test_a_refund_decision_gives_back_the_line_once_and_never_more(shop):
    order, line, inmate, kiosk, staff = shop
    before = inmate_balance(inmate=inmate).spendable_fen
    dispute = _dispute(shop)
    with pytest.raises(errors.RefundAboveLine):
        disputes.decide_dispute(
            dispute_id=dispute.pk,
            decision="refund",
            refund_fen=1_351,
            answer="x",
            staff_id=staff.pk,
        )
    decided = disputes.decide_dispute(
        dispute_id=dispute.pk,
        decision="refund",
        refund_fen=450,
        answer="One packet missing",
        staff_id=staff.pk,
    )
    assert (decided.status, decided.refund_fen) == ("refunded", 450)
    with pytest.raises(errors.DisputeNotOpen):
        disputes.decide_dispute(
            dispute_id=dispute.pk, decision="refund", answer="again", staff_id=staff.pk
        )
    assert inmate_balance(inmate=inmate).spendable_fen == before + 450
    line.refresh_from_db()
    assert line.refunded_fen == 450 and LineRefund.objects.get().dispute_id == dispute.pk
    # A second dispute of the line may get back only what is left (900 of 1,350).
    second = disputes.file_dispute(
        inmate_id=inmate.pk,
        device_id=kiosk.device.pk,
        order_id=order.pk,
        line_id=line.pk,
        reason="damaged",
        idempotency_key="k2",
        now=DELIVERED + dt.timedelta(days=2),
    )
    with pytest.raises(errors.RefundAboveLine):
        disputes.decide_dispute(
            dispute_id=second.pk,
            decision="refund",
            refund_fen=901,
            answer="x",
            staff_id=staff.pk,
        )
    disputes.decide_dispute(
        dispute_id=second.pk, decision="refund", answer="The rest", staff_id=staff.pk
    )
    assert inmate_balance(inmate=inmate).spendable_fen == before + 1_350


def test_a_rejection_s_answer_reaches_the_kiosk(shop):
    order, line, inmate, kiosk, staff = shop
    dispute = _dispute(shop)
    disputes.decide_dispute(
        dispute_id=dispute.pk,
        decision="reject",
        answer="Signed for in full",
        staff_id=staff.pk,
    )
    kiosk.sign_in(inmate)
    shown = kiosk.get(f"orders/{order.pk}").json()["disputes"][0]
    assert (shown["status"], shown["answer"], shown["refunded"]) == (
        "rejected",
        "Signed for in full",
        0,
    )


def test_an_overdue_dispute_is_escalated_once(shop):
    dispute = _dispute(shop)
    assert disputes.escalate_overdue_disputes(now=dispute.deadline - dt.timedelta(seconds=1)) == []
    assert disputes.escalate_overdue_disputes(now=dispute.deadline) == [dispute.pk]
    assert disputes.escalate_overdue_disputes(now=dispute.deadline) == []
    dispute.refresh_from_db()
    assert dispute.escalated_at == dispute.deadline


def test_the_escalation_task_emails_the_facility_s_administrators_once(shop, mailoutbox):
    from accounts.roles import FACILITY_ADMIN
    from catalog.tasks import escalate_overdue_disputes
    from tests.admin.conftest import staff_with_role

    order, line, inmate, kiosk, staff = shop
    admin_user = staff_with_role(FACILITY_ADMIN, inmate.facility)
    admin_user.email = "head@north.example"
    admin_user.save(update_fields=["email"])
    dispute = _dispute(shop)
    with time_machine.travel(dispute.deadline + dt.timedelta(minutes=1), tick=False):
        assert escalate_overdue_disputes() == 1
        assert escalate_overdue_disputes() == 0
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["head@north.example"]
    assert f"#{dispute.pk}" in mailoutbox[0].body
