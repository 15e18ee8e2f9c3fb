"""The release service itself enforces the second approver: a staff member's release paying out
more than the facility's threshold is refused without another trust officer's approval, and
changes nothing; at or below the threshold it goes through as before."""

import pytest

from commissary import errors
from facilities import services
from facilities.models import Inmate
from ledger import services as ledger_services
from ledger.models import Deposit, StaffRequest, Transaction
from ledger.selectors import inmate_balance
from tests.admin.conftest import make_site
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db

THRESHOLD_FEN = 50_000  # the facility's default approval threshold


@pytest.fixture
def site():
    site = make_site("alpha")
    assert site.facility.adjustment_approval_threshold_fen == THRESHOLD_FEN
    return site


def test_a_release_above_the_threshold_without_an_approver_is_refused_and_changes_nothing(
    site, ledger_snapshot
):
    deposit(site.inmate, THRESHOLD_FEN + 1)
    ledger_services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=site.inmate.pk,
        amount_fen=1_000,
        idempotency_key=key("pending"),
    )
    before = ledger_snapshot()

    with pytest.raises(errors.ApprovalRequired):
        services.release_inmate(
            inmate_id=site.inmate.pk,
            staff_id=site.staff["facility_admin"].pk,
            idempotency_key=key(),
        )

    assert ledger_snapshot() == before
    site.inmate.refresh_from_db()
    assert site.inmate.status == Inmate.Status.ACTIVE and site.inmate.card_token
    assert Deposit.objects.filter(inmate=site.inmate, status="created").count() == 1
    assert inmate_balance(inmate=site.inmate).spendable_fen == THRESHOLD_FEN + 1


@pytest.mark.parametrize(
    "approver", ("facility_admin", "clerk", "the requester", "another facility's officer")
)
def test_only_another_trust_officer_of_the_facility_approves_a_large_release(
    site, approver, ledger_snapshot
):
    other = make_site("bravo")
    approver_id = {
        "facility_admin": site.staff["facility_admin"].pk,
        "clerk": site.staff["clerk"].pk,
        "the requester": site.staff["trust_officer"].pk,
        "another facility's officer": other.staff["trust_officer"].pk,
    }[approver]
    deposit(site.inmate, 60_000)
    before = ledger_snapshot()
    with pytest.raises(errors.ApprovalRequired):
        services.release_inmate(
            inmate_id=site.inmate.pk,
            staff_id=site.staff["trust_officer"].pk,
            approved_by_id=approver_id,
            idempotency_key=key(),
        )
    assert ledger_snapshot() == before


def test_a_large_release_with_a_second_trust_officer_pays_out_and_records_the_approver(site):
    deposit(site.inmate, 60_000)
    requester, approver = site.staff["trust_officer"], site.staff["trust_officer_2"]
    services.release_inmate(
        inmate_id=site.inmate.pk,
        staff_id=requester.pk,
        approved_by_id=approver.pk,
        idempotency_key=key(),
    )
    site.inmate.refresh_from_db()
    assert site.inmate.status == Inmate.Status.RELEASED
    payout = Transaction.objects.get(kind=Transaction.Kind.PAYOUT, inmate=site.inmate)
    assert payout.entries.get(account__kind="payouts").amount_fen == 60_000
    assert (payout.created_by, payout.approved_by) == (requester, approver)


def test_a_release_exactly_at_the_threshold_needs_no_approver(site):
    deposit(site.inmate, THRESHOLD_FEN)
    services.release_inmate(
        inmate_id=site.inmate.pk, staff_id=site.staff["facility_admin"].pk, idempotency_key=key()
    )
    payout = Transaction.objects.get(kind=Transaction.Kind.PAYOUT, inmate=site.inmate)
    assert payout.entries.get(account__kind="payouts").amount_fen == THRESHOLD_FEN
    assert payout.approved_by is None


def test_held_money_counts_towards_the_payout(site):
    deposit(site.inmate, 40_000)
    ledger_services.hold_funds(
        inmate_id=site.inmate.pk,
        amount_fen=15_000,
        reason="Hold for a damaged tablet",
        staff_id=site.staff["trust_officer"].pk,
        idempotency_key=key(),
    )
    deposit(site.inmate, 15_000)  # spendable 40,000 + held 15,000: 55,000 paid out
    with pytest.raises(errors.ApprovalRequired):
        services.release_inmate(
            inmate_id=site.inmate.pk,
            staff_id=site.staff["facility_admin"].pk,
            idempotency_key=key(),
        )


def test_release_or_request_approval_releases_small_and_files_large(site):
    large = InmateFactory(facility=site.facility)
    deposit(site.inmate, 1_000)
    deposit(large, 70_000)
    staff_id = site.staff["facility_admin"].pk

    small_outcome = services.release_or_request_approval(
        inmate_id=site.inmate.pk, staff_id=staff_id, reason="", idempotency_key=key()
    )
    large_outcome = services.release_or_request_approval(
        inmate_id=large.pk, staff_id=staff_id, reason="Sentence served", idempotency_key=key()
    )

    assert not small_outcome.is_waiting
    assert small_outcome.inmate.status == Inmate.Status.RELEASED
    assert large_outcome.is_waiting and large_outcome.inmate.status == Inmate.Status.ACTIVE
    assert large_outcome.waiting_request.kind == StaffRequest.Kind.RELEASE_PAYOUT
    assert not Transaction.objects.filter(kind=Transaction.Kind.PAYOUT, inmate=large).exists()


def test_a_large_release_without_a_reason_files_nothing(site):
    deposit(site.inmate, 70_000)
    with pytest.raises(errors.ValidationFailed):
        services.release_or_request_approval(
            inmate_id=site.inmate.pk,
            staff_id=site.staff["facility_admin"].pk,
            reason="  ",
            idempotency_key=key(),
        )
    assert not StaffRequest.objects.exists()


def test_a_second_release_request_for_the_same_inmate_is_refused_while_one_waits(site):
    deposit(site.inmate, 70_000)
    first = ledger_services.request_money_action(
        kind=StaffRequest.Kind.RELEASE_PAYOUT,
        inmate_id=site.inmate.pk,
        reason="Sentence served",
        staff_id=site.staff["trust_officer"].pk,
    )
    with pytest.raises(errors.ValidationFailed, match=f"request #{first.pk}"):
        ledger_services.request_money_action(
            kind=StaffRequest.Kind.RELEASE_PAYOUT,
            inmate_id=site.inmate.pk,
            reason="Sentence served",
            staff_id=site.staff["trust_officer_2"].pk,
        )
    assert StaffRequest.objects.count() == 1
