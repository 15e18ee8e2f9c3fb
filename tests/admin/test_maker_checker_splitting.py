"""Maker-checker that cannot be split: the second-approver threshold applies to the sum of one
requester's debits of one inmate made without an approver, over the facility's day and its
approval window, not to each debit alone."""

import datetime as dt

import pytest

from commissary import errors
from ledger import services
from ledger.models import StaffRequest, Transaction
from ledger.selectors import inmate_balance
from tests.ledger.helpers import SHANGHAI, deposit, key

pytestmark = pytest.mark.django_db

State = StaffRequest.State
NOON = dt.datetime(2026, 3, 10, 12, tzinfo=SHANGHAI)


def ask(site, kind, amount_fen=None, who="trust_officer", now=NOON, **extra):
    return services.request_money_action(
        kind=kind,
        inmate_id=site.inmate.pk,
        amount_fen=amount_fen,
        reason="Damaged property",
        staff_id=site.staff[who].pk,
        now=now,
        **extra,
    )


def spendable(site) -> int:
    return inmate_balance(inmate=site.inmate).spendable_fen


def test_debits_split_under_the_threshold_make_the_one_that_crosses_it_wait(site_a):
    # ¥500.00 threshold; one trust officer alone: ¥1 + ¥300 + ¥199 = ¥500, then a ¥10 reversal
    # of a credit takes the day's unapproved debits to ¥510.
    assert site_a.facility.adjustment_approval_threshold_fen == 50_000
    deposit(site_a.inmate, 100_000, now=NOON)
    credit = ask(site_a, StaffRequest.Kind.CREDIT, 1_000, who="trust_officer_2")
    services.approve_request(
        staff_request_id=credit.pk, approver_id=site_a.staff["trust_officer"].pk, now=NOON
    )
    credit.refresh_from_db()

    for amount_fen in (100, 30_000, 19_900):
        done = ask(site_a, StaffRequest.Kind.DEBIT, amount_fen)
        assert done.state == State.EXECUTED and not done.needs_approval
    assert spendable(site_a) == 101_000 - 50_000

    reversal = ask(site_a, StaffRequest.Kind.REVERSAL, transaction_id=credit.transaction_id)

    assert reversal.state == State.REQUESTED and reversal.needs_approval
    assert spendable(site_a) == 51_000  # the reversal moved nothing
    assert not Transaction.objects.filter(reverses_id=credit.transaction_id).exists()


def test_another_requesters_debits_are_not_added_to_mine(site_a):
    deposit(site_a.inmate, 100_000, now=NOON)
    ask(site_a, StaffRequest.Kind.DEBIT, 40_000)
    mine = ask(site_a, StaffRequest.Kind.DEBIT, 40_000, who="trust_officer_2")
    assert mine.state == State.EXECUTED
    assert spendable(site_a) == 20_000


def test_approved_debits_do_not_count_towards_the_sum(site_a):
    deposit(site_a.inmate, 100_000, now=NOON)
    large = ask(site_a, StaffRequest.Kind.DEBIT, 60_000)
    services.approve_request(
        staff_request_id=large.pk, approver_id=site_a.staff["trust_officer_2"].pk, now=NOON
    )
    small = ask(site_a, StaffRequest.Kind.DEBIT, 40_000)
    assert small.state == State.EXECUTED


def test_the_window_reaches_across_local_midnight(site_a):
    deposit(site_a.inmate, 100_000, now=NOON)
    late = dt.datetime(2026, 3, 10, 23, 50, tzinfo=SHANGHAI)
    early = dt.datetime(2026, 3, 11, 0, 10, tzinfo=SHANGHAI)
    ask(site_a, StaffRequest.Kind.DEBIT, 40_000, now=late)
    after_midnight = ask(site_a, StaffRequest.Kind.DEBIT, 20_000, now=early)
    assert after_midnight.state == State.REQUESTED  # 24 hours back by default


def test_with_no_window_the_facility_day_still_counts(site_a):
    site_a.facility.approval_window_hours = 0
    site_a.facility.save(update_fields=["approval_window_hours"])
    deposit(site_a.inmate, 100_000, now=NOON)
    morning = dt.datetime(2026, 3, 10, 0, 5, tzinfo=SHANGHAI)  # 16:05 UTC the day before
    ask(site_a, StaffRequest.Kind.DEBIT, 40_000, now=morning)
    same_day = ask(site_a, StaffRequest.Kind.DEBIT, 20_000, now=NOON)
    assert same_day.state == State.REQUESTED
    next_day = ask(site_a, StaffRequest.Kind.DEBIT, 20_000, now=NOON + dt.timedelta(days=1))
    assert next_day.state == State.EXECUTED


def test_the_ledger_itself_refuses_a_split_debit_without_an_approver(site_a):
    deposit(site_a.inmate, 100_000, now=NOON)
    officer = site_a.staff["trust_officer"]
    for amount_fen in (30_000, 20_000):
        services.adjust_balance(
            inmate_id=site_a.inmate.pk,
            amount_fen=-amount_fen,
            reason="Damage",
            staff_id=officer.pk,
            idempotency_key=key(),
            now=NOON,
        )
    with pytest.raises(errors.ApprovalRequired) as refused:
        services.adjust_balance(
            inmate_id=site_a.inmate.pk,
            amount_fen=-1,
            reason="Damage",
            staff_id=officer.pk,
            idempotency_key=key(),
            now=NOON,
        )
    assert "other debits of this inmate today" in str(refused.value.message)
    assert spendable(site_a) == 50_000
    approved = services.adjust_balance(
        inmate_id=site_a.inmate.pk,
        amount_fen=-1,
        reason="Damage",
        staff_id=officer.pk,
        approved_by_id=site_a.staff["trust_officer_2"].pk,
        idempotency_key=key(),
        now=NOON,
    )
    assert approved.approved_by == site_a.staff["trust_officer_2"]


def test_the_preview_says_a_split_debit_will_wait(site_a):
    deposit(site_a.inmate, 100_000, now=NOON)
    ask(site_a, StaffRequest.Kind.DEBIT, 45_000)
    preview = services.preview_request(
        kind=StaffRequest.Kind.DEBIT,
        inmate=site_a.inmate,
        amount_fen=10_000,
        staff_id=site_a.staff["trust_officer"].pk,
        now=NOON,
    )
    assert preview.needs_approval
