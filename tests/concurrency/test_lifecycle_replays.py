"""Invariant 6 for transfers and releases: the same request sent twice at the same moment
gives both callers the first result. The earlier request is looked up under the inmate's lock,
so the second caller, which waited for the first, finds its event instead of answering "the
inmate is already at that facility" or "released"."""

import pytest

from facilities import services
from facilities.models import Inmate
from ledger.models import AccountEvent, Transaction
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def test_one_transfer_sent_twice_at_once_moves_once_and_both_get_the_move(run_together):
    origin, destination = FacilityFactory(code="from"), FacilityFactory(code="to")
    inmate = InmateFactory(facility=origin)
    staff = StaffFactory(facilities=[origin, destination])

    outcomes = run_together(
        [
            lambda: services.transfer_inmate(
                inmate_id=inmate.pk,
                to_facility=destination,
                staff_id=staff.pk,
                idempotency_key="transfer-once",
            )
            for _ in range(2)
        ]
    )

    assert [outcome.error for outcome in outcomes] == [None, None]
    assert all(outcome.value.facility_id == destination.pk for outcome in outcomes)
    assert AccountEvent.objects.filter(kind=AccountEvent.Kind.MOVED).count() == 1
    assert Inmate.objects.get(pk=inmate.pk).facility_id == destination.pk


def test_one_release_sent_twice_at_once_pays_out_once_and_both_get_the_release(run_together):
    facility = FacilityFactory(code="rel")
    inmate = InmateFactory(facility=facility)
    deposit(inmate, 20_000)
    staff = StaffFactory(facilities=[facility])

    outcomes = run_together(
        [
            lambda: services.release_inmate(
                inmate_id=inmate.pk, staff_id=staff.pk, idempotency_key="release-once"
            )
            for _ in range(2)
        ]
    )

    assert [outcome.error for outcome in outcomes] == [None, None]
    assert all(outcome.value.status == Inmate.Status.RELEASED for outcome in outcomes)
    assert AccountEvent.objects.filter(kind=AccountEvent.Kind.CLOSED).count() == 1
    payouts = Transaction.objects.filter(kind=Transaction.Kind.PAYOUT)
    assert payouts.count() == 1 and payouts.get().entries.filter(amount_fen=20_000).exists()
