"""Two staff members deciding one dispute at the same moment, on PostgreSQL: the line is
refunded once, never above what was paid for it."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from catalog.models import LineRefund
from catalog.services import disputes
from commissary import errors
from ledger.models import Transaction
from ledger.selectors import inmate_balance
from tests.catalog.disputes_helpers import delivered_order
from tests.factories import StaffFactory

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]
DELIVERED = dt.datetime(2026, 12, 1, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_two_staff_refunding_one_dispute_at_once_refund_it_once(run_together):
    order, line, inmate, device, staff = delivered_order(delivered_at=DELIVERED)
    dispute = disputes.file_dispute(
        inmate_id=inmate.pk,
        device_id=device.pk,
        order_id=order.pk,
        line_id=line.pk,
        reason="missing",
        idempotency_key="race",
        now=DELIVERED + dt.timedelta(days=1),
    )
    before = inmate_balance(inmate=inmate).spendable_fen
    deciders = [staff, StaffFactory(), StaffFactory(), StaffFactory()]

    outcomes = run_together(
        [
            lambda who=who: disputes.decide_dispute(
                dispute_id=dispute.pk, decision="refund", answer="Missing", staff_id=who.pk
            )
            for who in deciders
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 1
    assert all(
        isinstance(outcome.error, errors.DisputeNotOpen)
        for outcome in outcomes
        if not outcome.succeeded
    )
    assert Transaction.objects.filter(kind=Transaction.Kind.REFUND).count() == 1
    assert LineRefund.objects.count() == 1
    line.refresh_from_db()
    assert line.refunded_fen == line.line_total_fen == 1_350
    assert inmate_balance(inmate=inmate).spendable_fen == before + 1_350
