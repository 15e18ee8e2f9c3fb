"""Maker-checker requests decided at the same moment, on PostgreSQL: two trust officers
approving one request post it once; an approval racing a rejection ends as exactly one of
them, and money moves only if it was the approval."""

import pytest

from commissary import errors
from ledger import services
from ledger.models import StaffRequest, Transaction
from ledger.selectors import inmate_balance
from tests.admin.conftest import make_site, staff_with_role

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def ask_credit(site):
    return services.request_money_action(
        kind=StaffRequest.Kind.CREDIT,
        inmate_id=site.inmate.pk,
        amount_fen=40_000,
        reason="Wages",
        staff_id=site.staff["trust_officer"].pk,
    )


def test_two_trust_officers_approving_at_once_post_the_credit_once(run_together):
    from accounts.roles import TRUST_OFFICER

    site = make_site("race")
    third = staff_with_role(TRUST_OFFICER, site.facility)
    staff_request = ask_credit(site)

    outcomes = run_together(
        [
            lambda approver=approver: services.approve_request(
                staff_request_id=staff_request.pk, approver_id=approver.pk
            )
            for approver in (site.staff["trust_officer_2"], third)
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 1
    refused = next(outcome.error for outcome in outcomes if not outcome.succeeded)
    assert isinstance(refused, errors.ValidationFailed)
    assert Transaction.objects.filter(kind=Transaction.Kind.ADJUSTMENT).count() == 1
    assert inmate_balance(inmate=site.inmate).spendable_fen == 40_000


def test_an_approval_racing_a_rejection_ends_as_one_of_them(run_together):
    from accounts.roles import TRUST_OFFICER

    site = make_site("race")
    third = staff_with_role(TRUST_OFFICER, site.facility)
    staff_request = ask_credit(site)

    outcomes = run_together(
        [
            lambda: services.approve_request(
                staff_request_id=staff_request.pk, approver_id=site.staff["trust_officer_2"].pk
            ),
            lambda: services.reject_request(staff_request_id=staff_request.pk, staff_id=third.pk),
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 1
    staff_request.refresh_from_db()
    moved = inmate_balance(inmate=site.inmate).spendable_fen
    assert staff_request.state in (StaffRequest.State.EXECUTED, StaffRequest.State.REJECTED)
    assert moved == (40_000 if staff_request.state == StaffRequest.State.EXECUTED else 0)


def test_an_approval_racing_the_requesters_withdrawal_ends_as_one_of_them(run_together):
    site = make_site("race")
    staff_request = ask_credit(site)

    outcomes = run_together(
        [
            lambda: services.approve_request(
                staff_request_id=staff_request.pk, approver_id=site.staff["trust_officer_2"].pk
            ),
            lambda: services.withdraw_request(
                staff_request_id=staff_request.pk, staff_id=site.staff["trust_officer"].pk
            ),
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 1
    staff_request.refresh_from_db()
    moved = inmate_balance(inmate=site.inmate).spendable_fen
    assert staff_request.state in (StaffRequest.State.EXECUTED, StaffRequest.State.WITHDRAWN)
    assert moved == (40_000 if staff_request.state == StaffRequest.State.EXECUTED else 0)


def test_two_debits_split_under_the_threshold_at_once_cannot_both_execute(run_together):
    """One trust officer sends two ¥300 debits of one inmate at the same moment (threshold
    ¥500): the day's sum is read under the inmate's lock, so the second one sees the first
    and waits for a second trust officer."""
    from tests.ledger.helpers import deposit

    site = make_site("split")
    deposit(site.inmate, 100_000)

    outcomes = run_together(
        [
            lambda: services.request_money_action(
                kind=StaffRequest.Kind.DEBIT,
                inmate_id=site.inmate.pk,
                amount_fen=30_000,
                reason="Damaged property",
                staff_id=site.staff["trust_officer"].pk,
            )
            for _ in range(2)
        ]
    )

    assert all(outcome.succeeded for outcome in outcomes)
    states = sorted(outcome.value.state for outcome in outcomes)
    assert states == [StaffRequest.State.EXECUTED, StaffRequest.State.REQUESTED]
    assert inmate_balance(inmate=site.inmate).spendable_fen == 70_000
    assert Transaction.objects.filter(kind=Transaction.Kind.ADJUSTMENT).count() == 1
