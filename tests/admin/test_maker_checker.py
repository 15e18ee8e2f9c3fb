"""Maker-checker: a trust officer's money request that adds money (or takes a lot) moves
nothing until a second trust officer of the same facility approves it; the requester can never
approve their own; a rejected request moves nothing; approval posts once, under the request's
own system key."""

import pytest

from commissary import errors
from ledger import services
from ledger.models import StaffRequest, Transaction
from ledger.selectors import inmate_balance
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db

State = StaffRequest.State


def ask_credit(site, amount_fen=10_000, who="trust_officer"):
    return services.request_money_action(
        kind=StaffRequest.Kind.CREDIT,
        inmate_id=site.inmate.pk,
        amount_fen=amount_fen,
        reason="Wages for kitchen work",
        staff_id=site.staff[who].pk,
    )


def spendable(inmate) -> int:
    return inmate_balance(inmate=inmate).spendable_fen


def test_a_credit_waits_and_moves_nothing_before_approval(site_a, ledger_snapshot):
    before = ledger_snapshot()
    staff_request = ask_credit(site_a)
    assert staff_request.state == State.REQUESTED and staff_request.needs_approval
    assert ledger_snapshot() == before


def test_the_requester_cannot_approve_their_own_request(site_a, ledger_snapshot):
    staff_request = ask_credit(site_a)
    before = ledger_snapshot()
    with pytest.raises(errors.NotPermitted):
        services.approve_request(
            staff_request_id=staff_request.pk, approver_id=site_a.staff["trust_officer"].pk
        )
    assert ledger_snapshot() == before
    staff_request.refresh_from_db()
    assert staff_request.state == State.REQUESTED and staff_request.decided_by is None


def test_a_trust_officer_of_another_facility_cannot_approve(site_a, site_b, ledger_snapshot):
    staff_request = ask_credit(site_a)
    before = ledger_snapshot()
    with pytest.raises(errors.NotPermitted):
        services.approve_request(
            staff_request_id=staff_request.pk, approver_id=site_b.staff["trust_officer"].pk
        )
    assert ledger_snapshot() == before


def test_a_clerk_or_auditor_of_the_facility_cannot_approve(site_a, ledger_snapshot):
    staff_request = ask_credit(site_a)
    before = ledger_snapshot()
    for who in ("clerk", "auditor", "facility_admin"):
        with pytest.raises(errors.NotPermitted):
            services.approve_request(
                staff_request_id=staff_request.pk, approver_id=site_a.staff[who].pk
            )
    assert ledger_snapshot() == before


def test_a_second_trust_officer_approves_and_the_money_posts_once_with_both_names(
    site_a, assert_ledger_consistent
):
    staff_request = ask_credit(site_a, amount_fen=12_345)
    approver = site_a.staff["trust_officer_2"]
    services.approve_request(staff_request_id=staff_request.pk, approver_id=approver.pk)
    staff_request.refresh_from_db()
    assert staff_request.state == State.EXECUTED and staff_request.decided_by == approver
    posted = staff_request.transaction
    assert posted.kind == Transaction.Kind.ADJUSTMENT
    assert (posted.idempotency_scope, posted.idempotency_key) == (
        services.SYSTEM_SCOPE,
        f"staff-request:{staff_request.pk}",
    )
    assert posted.created_by == site_a.staff["trust_officer"] and posted.approved_by == approver
    assert spendable(site_a.inmate) == 12_345
    with pytest.raises(errors.ValidationFailed):
        services.approve_request(staff_request_id=staff_request.pk, approver_id=approver.pk)
    assert spendable(site_a.inmate) == 12_345
    assert_ledger_consistent()


def test_a_rejected_request_moves_nothing_and_cannot_be_approved_later(site_a, ledger_snapshot):
    staff_request = ask_credit(site_a)
    before = ledger_snapshot()
    services.reject_request(
        staff_request_id=staff_request.pk, staff_id=site_a.staff["trust_officer_2"].pk, note="No"
    )
    with pytest.raises(errors.ValidationFailed):
        services.approve_request(
            staff_request_id=staff_request.pk, approver_id=site_a.staff["trust_officer_2"].pk
        )
    assert ledger_snapshot() == before
    staff_request.refresh_from_db()
    assert staff_request.state == State.REJECTED


def test_a_small_debit_executes_at_once_and_a_large_one_waits(site_a):
    deposit(site_a.inmate, 90_000)
    threshold = site_a.facility.adjustment_approval_threshold_fen  # 500.00 yuan by default
    small = services.request_money_action(
        kind=StaffRequest.Kind.DEBIT,
        inmate_id=site_a.inmate.pk,
        amount_fen=1_000,
        reason="Broken cup",
        staff_id=site_a.staff["trust_officer"].pk,
    )
    assert small.state == State.EXECUTED and spendable(site_a.inmate) == 89_000
    large = services.request_money_action(
        kind=StaffRequest.Kind.DEBIT,
        inmate_id=site_a.inmate.pk,
        amount_fen=threshold + 1,
        reason="Damages",
        staff_id=site_a.staff["trust_officer"].pk,
    )
    assert large.state == State.REQUESTED and spendable(site_a.inmate) == 89_000


def test_a_hold_and_a_freeze_execute_at_once(site_a):
    deposit(site_a.inmate, 5_000)
    services.request_money_action(
        kind=StaffRequest.Kind.HOLD,
        inmate_id=site_a.inmate.pk,
        amount_fen=2_000,
        reason="Court order",
        staff_id=site_a.staff["trust_officer"].pk,
    )
    frozen = services.request_money_action(
        kind=StaffRequest.Kind.FREEZE,
        inmate_id=site_a.inmate.pk,
        reason="Investigation",
        staff_id=site_a.staff["trust_officer"].pk,
    )
    money = inmate_balance(inmate=site_a.inmate)
    assert (money.spendable_fen, money.held_fen, money.is_frozen) == (3_000, 2_000, True)
    assert frozen.account_event.created_by == site_a.staff["trust_officer"]


def test_reversing_a_debit_adds_money_so_it_waits_for_approval(site_a):
    deposit(site_a.inmate, 5_000)
    debit = services.request_money_action(
        kind=StaffRequest.Kind.DEBIT,
        inmate_id=site_a.inmate.pk,
        amount_fen=1_000,
        reason="Mistake to come",
        staff_id=site_a.staff["trust_officer"].pk,
    )
    reversal = services.request_money_action(
        kind=StaffRequest.Kind.REVERSAL,
        inmate_id=site_a.inmate.pk,
        transaction_id=debit.transaction_id,
        reason="Debited the wrong inmate",
        staff_id=site_a.staff["trust_officer"].pk,
    )
    assert reversal.state == State.REQUESTED and spendable(site_a.inmate) == 4_000
    services.approve_request(
        staff_request_id=reversal.pk, approver_id=site_a.staff["trust_officer_2"].pk
    )
    assert spendable(site_a.inmate) == 5_000


def test_a_release_payout_above_the_threshold_waits_then_pays_out(site_a):
    deposit(site_a.inmate, 60_000)
    release = services.request_money_action(
        kind=StaffRequest.Kind.RELEASE_PAYOUT,
        inmate_id=site_a.inmate.pk,
        reason="Sentence served",
        staff_id=site_a.staff["trust_officer"].pk,
    )
    site_a.inmate.refresh_from_db()
    assert release.state == State.REQUESTED and not site_a.inmate.is_released
    services.approve_request(
        staff_request_id=release.pk, approver_id=site_a.staff["trust_officer_2"].pk
    )
    site_a.inmate.refresh_from_db()
    assert site_a.inmate.is_released and spendable(site_a.inmate) == 0
    release.refresh_from_db()
    assert release.transaction.kind == Transaction.Kind.PAYOUT


def test_the_preview_shows_the_money_and_cap_room_after(site_a):
    deposit(site_a.inmate, 10_000)
    preview = services.preview_request(
        kind=StaffRequest.Kind.CREDIT, inmate=site_a.inmate, amount_fen=2_500
    )
    assert (preview.spendable_before_fen, preview.spendable_after_fen) == (10_000, 12_500)
    assert preview.balance_room_after_fen == site_a.facility.balance_cap_fen - 12_500
    assert preview.needs_approval
