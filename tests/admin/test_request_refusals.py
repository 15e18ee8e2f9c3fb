"""Requests that cannot be done are refused when filed, with the approver's words; frozen
accounts take only what the freeze rules allow; the requester (only they) may withdraw a
waiting request; the facility's other trust officers are emailed when a request waits."""

import pytest
from django.core import mail

from commissary import errors
from ledger import services
from ledger.models import StaffRequest, Transaction
from ledger.notifications import email_approvers_of_request
from ledger.selectors import inmate_balance
from tests.ledger.helpers import deposit, set_frozen

pytestmark = pytest.mark.django_db

Kind, State = StaffRequest.Kind, StaffRequest.State


def ask(site, kind, amount_fen=None, who="trust_officer", **extra):
    return services.request_money_action(
        kind=kind,
        inmate_id=site.inmate.pk,
        amount_fen=amount_fen,
        reason="Damaged property",
        staff_id=site.staff[who].pk,
        **extra,
    )


# --- refused at the preview ------------------------------------------------------------------


def test_a_debit_larger_than_the_balance_is_refused_when_filed_with_the_approvers_words(
    site_a, ledger_snapshot
):
    deposit(site_a.inmate, 10_000)
    preview = services.preview_request(
        kind=Kind.DEBIT, inmate=site_a.inmate, amount_fen=500_000, staff_id=1
    )
    assert preview.spendable_after_fen == -490_000
    assert isinstance(preview.refusal, errors.InsufficientFunds)
    before = ledger_snapshot()
    with pytest.raises(errors.InsufficientFunds) as at_filing:
        ask(site_a, Kind.DEBIT, 500_000)
    assert ledger_snapshot() == before and not StaffRequest.objects.exists()
    # The approver meets the same words when the money is gone by the time they approve.
    waiting = ask(site_a, Kind.DEBIT, 10_000, who="trust_officer")
    waiting_large = StaffRequest.objects.create(
        kind=Kind.DEBIT,
        facility=site_a.facility,
        inmate=site_a.inmate,
        amount_fen=500_000,
        reason="x",
        needs_approval=True,
        requested_by=site_a.staff["trust_officer"],
        requested_at=waiting.requested_at,
    )
    with pytest.raises(errors.InsufficientFunds) as at_approval:
        services.approve_request(
            staff_request_id=waiting_large.pk, approver_id=site_a.staff["trust_officer_2"].pk
        )
    assert str(at_filing.value) == str(at_approval.value)


def test_a_credit_over_the_balance_cap_is_refused_when_filed(site_a):
    with pytest.raises(errors.BalanceCapExceeded):
        ask(site_a, Kind.CREDIT, site_a.facility.balance_cap_fen + 1)
    assert not StaffRequest.objects.exists()


def test_releasing_more_than_is_held_is_refused_when_filed(site_a):
    deposit(site_a.inmate, 10_000)
    ask(site_a, Kind.HOLD, 5_000)
    with pytest.raises(errors.InsufficientFunds, match="Less than that is held"):
        ask(site_a, Kind.HOLD_RELEASE, 6_000)


def test_the_admin_preview_shows_the_refusal_and_offers_no_confirm(client, site_a):
    deposit(site_a.inmate, 10_000)
    client.force_login(site_a.staff["trust_officer"])
    page = client.post(
        "/admin/ledger/staffrequest/add/",
        {
            "inmate": site_a.inmate.pk,
            "kind": "debit",
            "amount": "5,000.00",
            "reason": "x",
            "preview": "1",
        },
    ).content.decode()
    assert "−¥4,900.00" in page or "-¥4,900.00" in page
    assert "spendable balance is too low" in page
    assert 'name="confirm"' not in page


# --- frozen accounts -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.DEBIT, Kind.CREDIT, Kind.HOLD_RELEASE])
def test_a_frozen_account_takes_no_staff_debit_or_credit(site_a, kind, ledger_snapshot):
    deposit(site_a.inmate, 20_000)
    ask(site_a, Kind.HOLD, 5_000)
    set_frozen(site_a.inmate, True, staff=site_a.staff["trust_officer"])
    before = ledger_snapshot()
    with pytest.raises(errors.AccountFrozen) as refused:
        ask(site_a, kind, 1_000)
    assert refused.value.code == "account_frozen"
    assert "frozen" in str(refused.value)
    assert ledger_snapshot() == before


def test_a_credit_approved_after_the_account_was_frozen_is_refused_and_keeps_waiting(site_a):
    staff_request = ask(site_a, Kind.CREDIT, 1_000)
    set_frozen(site_a.inmate, True, staff=site_a.staff["trust_officer"])
    with pytest.raises(errors.AccountFrozen):
        services.approve_request(
            staff_request_id=staff_request.pk, approver_id=site_a.staff["trust_officer_2"].pk
        )
    staff_request.refresh_from_db()
    assert staff_request.state == State.REQUESTED
    assert inmate_balance(inmate=site_a.inmate).spendable_fen == 0


def test_a_reversal_on_a_frozen_account_is_refused(site_a):
    deposit(site_a.inmate, 20_000)
    debit = ask(site_a, Kind.DEBIT, 1_000)
    set_frozen(site_a.inmate, True, staff=site_a.staff["trust_officer"])
    with pytest.raises(errors.AccountFrozen):
        ask(site_a, Kind.REVERSAL, transaction_id=debit.transaction_id, who="trust_officer_2")


def test_a_frozen_account_may_still_hold_money(site_a):
    deposit(site_a.inmate, 20_000)
    set_frozen(site_a.inmate, True, staff=site_a.staff["trust_officer"])
    held = ask(site_a, Kind.HOLD, 5_000)
    assert held.state == State.EXECUTED
    assert inmate_balance(inmate=site_a.inmate).held_fen == 5_000


def test_releasing_a_frozen_account_needs_a_second_trust_officer_even_for_a_small_payout(site_a):
    deposit(site_a.inmate, 1_000)  # ¥10, far below the threshold
    set_frozen(site_a.inmate, True, staff=site_a.staff["trust_officer"])
    release = ask(site_a, Kind.RELEASE_PAYOUT)
    assert release.state == State.REQUESTED and release.needs_approval
    assert not Transaction.objects.filter(kind=Transaction.Kind.PAYOUT).exists()
    services.approve_request(
        staff_request_id=release.pk, approver_id=site_a.staff["trust_officer_2"].pk
    )
    assert Transaction.objects.filter(kind=Transaction.Kind.PAYOUT).count() == 1


# --- withdrawal ------------------------------------------------------------------------------


def test_the_requester_withdraws_and_nothing_moves(site_a, ledger_snapshot):
    staff_request = ask(site_a, Kind.CREDIT, 1_000)
    before = ledger_snapshot()
    services.withdraw_request(
        staff_request_id=staff_request.pk, staff_id=site_a.staff["trust_officer"].pk
    )
    staff_request.refresh_from_db()
    assert staff_request.state == State.WITHDRAWN
    assert staff_request.decided_by == site_a.staff["trust_officer"]
    assert ledger_snapshot() == before
    with pytest.raises(errors.ValidationFailed):
        services.approve_request(
            staff_request_id=staff_request.pk, approver_id=site_a.staff["trust_officer_2"].pk
        )


def test_nobody_else_can_withdraw_and_the_requester_cannot_reject(site_a):
    staff_request = ask(site_a, Kind.CREDIT, 1_000)
    with pytest.raises(errors.NotPermitted):
        services.withdraw_request(
            staff_request_id=staff_request.pk, staff_id=site_a.staff["trust_officer_2"].pk
        )
    with pytest.raises(errors.NotPermitted):
        services.reject_request(
            staff_request_id=staff_request.pk, staff_id=site_a.staff["trust_officer"].pk
        )
    staff_request.refresh_from_db()
    assert staff_request.state == State.REQUESTED


def test_the_withdraw_action_confirms_then_withdraws_only_the_users_own(client, site_a):
    from auditlog.models import LogEntry

    mine = ask(site_a, Kind.CREDIT, 1_000)
    theirs = ask(site_a, Kind.CREDIT, 2_000, who="trust_officer_2")
    client.force_login(site_a.staff["trust_officer"])
    changelist = "/admin/ledger/staffrequest/"
    selected = {"action": "withdraw_requests", "_selected_action": [mine.pk, theirs.pk]}
    confirmation = client.post(changelist, selected)
    assert confirmation.status_code == 200
    page = confirmation.content.decode()
    assert f"#{mine.pk}" in page and "someone else" in page
    mine.refresh_from_db()
    assert mine.state == State.REQUESTED  # nothing before the confirmation

    client.post(changelist, selected | {"confirm_withdraw": "1", "decision_note": "typo"})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.state == State.WITHDRAWN and mine.decision_note == "typo"
    assert theirs.state == State.REQUESTED
    logged = LogEntry.objects.get_for_object(mine).filter(action=LogEntry.Action.UPDATE)
    assert any(entry.changes_dict.get("state") == ["requested", "withdrawn"] for entry in logged)


def test_the_request_page_offers_withdraw_to_the_requester_only(client, site_a):
    staff_request = ask(site_a, Kind.CREDIT, 1_000)
    url = f"/admin/ledger/staffrequest/{staff_request.pk}/change/"
    client.force_login(site_a.staff["trust_officer"])
    assert "Withdraw this request" in client.get(url).content.decode()
    client.force_login(site_a.staff["trust_officer_2"])
    other = client.get(url).content.decode()
    assert "Withdraw this request" not in other and "Approve and execute" in other
    client.post(
        f"/admin/ledger/staffrequest/{staff_request.pk}/withdraw/", {"confirm_withdraw": "1"}
    )
    staff_request.refresh_from_db()
    assert staff_request.state == State.REQUESTED


# --- approvers are told ----------------------------------------------------------------------


def test_a_waiting_request_emails_each_other_trust_officer_once(
    site_a, queued_approver_emails, django_capture_on_commit_callbacks, settings
):
    from accounts.roles import TRUST_OFFICER
    from tests.admin.conftest import staff_with_role

    third = staff_with_role(TRUST_OFFICER, site_a.facility)
    for user, address in (
        (site_a.staff["trust_officer"], "one@example.cn"),
        (site_a.staff["trust_officer_2"], "two@example.cn"),
        (third, "three@example.cn"),
        (site_a.staff["facility_admin"], "admin@example.cn"),
    ):
        user.email = address
        user.save(update_fields=["email"])
    deposit(site_a.inmate, 100_000)
    with django_capture_on_commit_callbacks(execute=True):
        ask(site_a, Kind.DEBIT, 1_000)  # executed at once: nobody is told
    assert queued_approver_emails == []
    with django_capture_on_commit_callbacks(execute=True):
        staff_request = ask(site_a, Kind.DEBIT, 60_000)
    assert queued_approver_emails == [{"staff_request_id": staff_request.pk}]

    settings.LANGUAGE_CODE = "zh-hans"  # the site's language (the tests run in English)
    sent = email_approvers_of_request.apply(kwargs=queued_approver_emails[0]).get()

    assert sent == 2
    assert sorted(message.to[0] for message in mail.outbox) == [
        "three@example.cn",
        "two@example.cn",
    ]
    assert all(f"#{staff_request.pk}" in message.subject for message in mail.outbox)
    assert "等待" in mail.outbox[0].subject  # in the approvers' language (zh-hans)
    assert "¥600.00" in mail.outbox[0].body and "在押人员" in mail.outbox[0].body


def test_a_refused_request_queues_no_email(
    site_a, queued_approver_emails, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(errors.InsufficientFunds):
        ask(site_a, Kind.DEBIT, 60_000)
    assert queued_approver_emails == []
