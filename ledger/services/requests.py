"""Maker-checker money requests from trust officers (``StaffRequest``), and changes of a
facility's money policy from facility administrators.

One trust officer asks (an adjustment, a hold or its release, a freeze, a reversal, a release
payout), with a reason. What needs a second trust officer — every credit, every action that adds
money to the inmate, and debits above the facility's threshold (``needs_approval``) — waits
until another trust officer assigned to the same facility approves it (never the requester:
``accounts.selectors.may_approve``, checked under the inmate's lock, and again by the ledger
service). Approval posts through the ordinary ledger service with the key
``staff-request:<id>`` in the system scope, so a request moves money at most once however often
it is approved; a rejection moves nothing. What needs no approval executes when asked.

The inmate admin's release action files a ``release_payout`` request the same way when the
payout is above the threshold (``file_release_request_if_needed``), for whoever released.

What is impossible is refused when it is asked for, with the words the approver would get:
a request whose preview shows spendable money below zero, or room under the balance cap
below zero, is never filed (the approver's own check under the lock stays). A debit that the
requester's other unapproved debits of the day take over the threshold waits for a second
trust officer (``staff.debit_needs_approval``), and a frozen account takes only what the
freeze rules allow (``services.staff``).

The requester may withdraw their own waiting request (nobody else may); a rejection is always
someone who could have approved it. Both move nothing and are in the audit trail (the request
row is audited).

Policy changes (``policy_change``): the approval threshold and its window, the deposit fee rule
and the deposit limits of a facility change only when a second facility administrator of the
facility (or a superuser) approves a request filed by another; the new values are checked
against ``facilities.models.policy_bound_errors`` when asked and again under the facility's
row lock when approved, and saved through the model, so the audit trail has old and new.

Lock order as everywhere: the inmate's accounts first (``lock_inmate_accounts``), then the
request row; a policy change locks the facility row (``FOR NO KEY UPDATE``), then the request
row. Two approvers racing both wait; the second finds the request already decided.

Over 400 lines because a request's whole life is here (preview, filing, approval, rejection,
execution per kind): each step re-checks what the one before decided, and reads best beside it.

About 680 lines in one module: filing, deciding, withdrawing and executing a request share
the request row's states and the inmate's lock order, which read best in one place.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import selectors as people
from commissary import errors
from facilities.models import POLICY_CHANGE_FIELDS, Facility, Inmate, policy_bound_errors
from facilities.records import set_facility_policy

from .. import notifications
from ..locks import LockedInmate, lock_facility_for_policy, lock_inmate_accounts
from ..models import AccountEvent, StaffRequest, Transaction
from ..selectors import release_needs_approval, release_payout_fen
from .posting import SYSTEM_SCOPE, checked_amount, checked_reason
from .staff import (
    REVERSIBLE_KINDS,
    adjust_balance,
    check_adjustment,
    check_hold_move,
    check_reversal,
    debit_needs_approval,
    ensure_not_frozen,
    ensure_staff_may_act,
    hold_funds,
    release_hold,
    reversal_judged_amount_fen,
    reverse_transaction,
    set_account_frozen,
)

Kind = StaffRequest.Kind
State = StaffRequest.State


def request_key(staff_request_id: int) -> str:
    return f"staff-request:{staff_request_id}"


@dataclass(frozen=True)
class RequestPreview:
    """What a request will do, shown before it is confirmed (all amounts in fen)."""

    currency: str
    spendable_before_fen: int
    held_before_fen: int
    spendable_after_fen: int
    held_after_fen: int
    pending_fen: int
    balance_cap_fen: int
    paid_out_fen: int
    is_frozen_after: bool
    needs_approval: bool
    refusal: errors.DomainError | None = None

    @property
    def balance_room_before_fen(self) -> int:
        total = self.spendable_before_fen + self.held_before_fen + self.pending_fen
        return self.balance_cap_fen - total

    @property
    def balance_room_after_fen(self) -> int:
        total = self.spendable_after_fen + self.held_after_fen + self.pending_fen
        return self.balance_cap_fen - total


def _legs_of_reversal(original: Transaction, inmate_id: int) -> tuple[int, int, list[int]]:
    """How a reversal of ``original`` would change the inmate's (spendable, held), and the
    amounts of all its legs."""
    spendable_change = held_change = 0
    amounts = []
    for kind, inmate_of_account, amount_fen in original.entries.values_list(
        "account__kind", "account__inmate_id", "amount_fen"
    ):
        amounts.append(amount_fen)
        if inmate_of_account != inmate_id:
            continue
        if kind == "spendable":
            spendable_change -= amount_fen
        elif kind == "held":
            held_change -= amount_fen
    return spendable_change, held_change, amounts


def _reversal_target(inmate_id: int, transaction_id) -> Transaction:
    original = Transaction.objects.filter(pk=transaction_id, inmate_id=inmate_id).first()
    if original is None:
        raise errors.TransactionNotFound(_("That transaction is not one of this inmate's."))
    if original.kind not in REVERSIBLE_KINDS:
        raise errors.NotReversible(
            _("Only staff adjustments, holds and hold releases can be reversed.")
        )
    return original


def _assess(
    cursor,
    locked: LockedInmate,
    *,
    kind: str,
    amount_fen: int | None,
    transaction_id: int | None,
    staff_id: int | None,
    now: dt.datetime,
) -> RequestPreview:
    """What the request would do to the inmate's money, read under the inmate's lock: the
    balances after it, whether it waits for a second trust officer, and the refusal the
    approver would meet if it cannot be done at all (the same checks the services run)."""
    spendable, held, is_frozen = locked.spendable_fen, locked.held_fen, locked.is_frozen
    moved_fen = amount_fen or 0
    paid_out = 0
    waits = False
    checks = []
    if kind in (Kind.CREDIT, Kind.DEBIT):
        signed_fen = moved_fen if kind == Kind.CREDIT else -moved_fen
        spendable += signed_fen
        waits = signed_fen > 0 or debit_needs_approval(
            cursor,
            locked,
            amount_fen=signed_fen,
            taken_fen=moved_fen * (kind == Kind.DEBIT),
            staff_id=staff_id,
            now=now,
        )
        checks = [
            lambda: ensure_not_frozen(locked),
            lambda: check_adjustment(
                amount_fen=signed_fen,
                spendable_fen=locked.spendable_fen,
                room_fen=locked.room_under_balance_cap_fen,
            ),
        ]
    elif kind in (Kind.HOLD, Kind.HOLD_RELEASE):
        to_held = kind == Kind.HOLD
        shift = moved_fen if to_held else -moved_fen
        spendable, held = spendable - shift, held + shift
        checks = [] if to_held else [lambda: ensure_not_frozen(locked)]
        checks.append(
            lambda: check_hold_move(
                amount_fen=moved_fen,
                to_held=to_held,
                spendable_fen=locked.spendable_fen,
                held_fen=locked.held_fen,
                pending_fen=locked.pending_fen,
                balance_cap_fen=locked.balance_cap_fen,
            )
        )
    elif kind in (Kind.FREEZE, Kind.UNFREEZE):
        freezing = kind == Kind.FREEZE
        if is_frozen == freezing:
            checks = [
                lambda: _refuse(
                    _("The account is already frozen.")
                    if freezing
                    else _("The account is not frozen.")
                )
            ]
        is_frozen = freezing
    elif kind == Kind.REVERSAL:
        original = _reversal_target(locked.inmate_id, transaction_id)
        spendable_change, held_change, amounts = _legs_of_reversal(original, locked.inmate_id)
        spendable, held = spendable + spendable_change, held + held_change
        new_money = spendable_change + held_change
        waits = debit_needs_approval(
            cursor,
            locked,
            amount_fen=reversal_judged_amount_fen(new_money, [(None, a) for a in amounts]),
            taken_fen=max(0, -new_money),
            staff_id=staff_id,
            now=now,
        )
        checks = [
            lambda: ensure_not_frozen(locked),
            lambda: _ensure_not_reversed(transaction_id),
            lambda: check_reversal(
                spendable_fen=locked.spendable_fen,
                held_fen=locked.held_fen,
                new_spendable_fen=spendable,
                new_held_fen=held,
                pending_fen=locked.pending_fen,
                balance_cap_fen=locked.balance_cap_fen,
            ),
        ]
    elif kind == Kind.RELEASE_PAYOUT:
        paid_out = release_payout_fen(spendable_fen=spendable, held_fen=held)
        spendable = held = 0
        waits = release_needs_approval(
            payout_fen=paid_out,
            approval_threshold_fen=locked.approval_threshold_fen,
            is_frozen=locked.is_frozen,
        )
    refusal = None
    for check in checks:
        try:
            check()
        except errors.DomainError as refused:
            refusal = refused
            break
    return RequestPreview(
        currency=locked.currency,
        spendable_before_fen=locked.spendable_fen,
        held_before_fen=locked.held_fen,
        spendable_after_fen=spendable,
        held_after_fen=held,
        pending_fen=locked.pending_fen,
        balance_cap_fen=locked.balance_cap_fen,
        paid_out_fen=paid_out,
        is_frozen_after=is_frozen,
        needs_approval=waits,
        refusal=refusal,
    )


def _refuse(message) -> None:
    raise errors.ValidationFailed(message)


def _ensure_not_reversed(transaction_id: int) -> None:
    if Transaction.objects.filter(reverses_id=transaction_id).exists():
        raise errors.NotReversible(_("This transaction has already been reversed."))


def preview_request(
    *,
    kind: str,
    inmate,
    amount_fen: int | None = None,
    transaction_id: int | None = None,
    staff_id: int | None = None,
    now: dt.datetime | None = None,
) -> RequestPreview:
    """What the request would do to the inmate's money if executed now, for ``staff_id``
    asking, with the refusal it would meet (``refusal``) when it cannot be done. Read under
    the inmate's lock, briefly, exactly as filing reads it; it changes nothing, and the
    services check everything again when the request runs."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate.pk)
        if locked.is_closed:
            raise errors.InmateReleased()
        return _assess(
            cursor,
            locked,
            kind=kind,
            amount_fen=amount_fen,
            transaction_id=transaction_id if kind == Kind.REVERSAL else None,
            staff_id=staff_id,
            now=now,
        )


def request_money_action(
    *,
    kind: str,
    inmate_id: int,
    reason: str,
    staff_id: int,
    amount_fen: int | None = None,
    transaction_id: int | None = None,
    now: dt.datetime | None = None,
) -> StaffRequest:
    """Record a trust officer's request. One that cannot be done (its preview shows spendable
    money or room under the cap below zero, or the account is frozen against it) is refused
    here with the approver's words, and nothing is recorded. One that needs no second trust
    officer is executed at once, in the same database transaction. One that waits is filed,
    and the facility's other trust officers are emailed once it is committed."""
    if kind not in Kind.values or kind == Kind.POLICY_CHANGE:
        raise errors.ValidationFailed(_("Choose what should be done."))
    reason = checked_reason(reason)
    amount_fen = checked_amount(amount_fen) if kind in StaffRequest.AMOUNT_KINDS else None
    if kind != Kind.REVERSAL:
        transaction_id = None
    now = now or timezone.now()
    inmate = Inmate.objects.filter(pk=inmate_id).only("facility_id").first()
    if inmate is None:
        raise errors.InmateNotFound()
    if not people.may_request(staff_id=staff_id, facility_id=inmate.facility_id):
        raise errors.NotPermitted(
            _("Only an active staff member assigned to the inmate's facility can ask for this.")
        )
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        if locked.is_closed:
            raise errors.InmateReleased()
        if kind == Kind.RELEASE_PAYOUT:
            _ensure_no_release_waiting(inmate_id)
        assessed = _assess(
            cursor,
            locked,
            kind=kind,
            amount_fen=amount_fen,
            transaction_id=transaction_id,
            staff_id=staff_id,
            now=now,
        )
        if assessed.refusal is not None:
            raise assessed.refusal
        staff_request = StaffRequest.objects.create(
            kind=kind,
            facility_id=locked.facility_id,
            inmate_id=inmate_id,
            amount_fen=amount_fen,
            target_transaction_id=transaction_id,
            reason=reason,
            needs_approval=assessed.needs_approval,
            requested_by_id=staff_id,
            requested_at=now,
        )
        if assessed.needs_approval:
            notifications.email_approvers_on_commit(staff_request.pk)
        else:
            _execute(staff_request, approved_by_id=None, now=now)
    return staff_request


def file_release_request_if_needed(
    *, inmate_id: int, reason: str, staff_id: int, now: dt.datetime | None = None
) -> StaffRequest | None:
    """For a release asked for outside a money request (the inmate admin's release action).

    Under the inmate's lock: when releasing now would pay out more than the facility's
    threshold, file a ``release_payout`` request with the reason, waiting for a second trust
    officer, and return it (the one already waiting, if there is one: a form sent twice files
    one request). Otherwise file nothing and return None, and the caller releases at once.
    Call it inside the caller's transaction, so the lock taken here still holds when the
    caller releases and the decision cannot go stale in between; the release service checks
    the threshold again all the same."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        ensure_staff_may_act(staff_id=staff_id, facility_id=locked.facility_id)
        if locked.is_closed:
            return None  # the release answers: a replay of its own key, or a refusal
        payout_fen = release_payout_fen(
            spendable_fen=locked.spendable_fen, held_fen=locked.held_fen
        )
        if not release_needs_approval(
            payout_fen=payout_fen,
            approval_threshold_fen=locked.approval_threshold_fen,
            is_frozen=locked.is_frozen,
        ):
            return None
        waiting = _waiting_release(inmate_id)
        if waiting is not None:
            return waiting
        return StaffRequest.objects.create(
            kind=Kind.RELEASE_PAYOUT,
            facility_id=locked.facility_id,
            inmate_id=inmate_id,
            reason=checked_reason(reason),
            needs_approval=True,
            requested_by_id=staff_id,
            requested_at=now,
        )


def _waiting_release(inmate_id: int) -> StaffRequest | None:
    return StaffRequest.objects.filter(
        inmate_id=inmate_id, kind=Kind.RELEASE_PAYOUT, state=State.REQUESTED
    ).first()


def _ensure_no_release_waiting(inmate_id: int) -> None:
    # Read under the inmate's lock, which every request takes first: two releases of one
    # inmate never wait side by side (the second could only fail once the first ran).
    waiting = _waiting_release(inmate_id)
    if waiting is not None:
        raise errors.ValidationFailed(
            _(
                "A release of this inmate is already waiting for a second trust officer "
                "(request #%(id)d)."
            )
            % {"id": waiting.pk}
        )


def _lock_request(cursor, staff_request_id: int) -> StaffRequest:
    """Take the locks a decision on the request needs, in the order of ``ledger.locks`` (the
    inmate's accounts, or for a policy change the facility row), then the request row."""
    staff_request = _existing_request(staff_request_id)
    if staff_request.is_policy_change:
        lock_facility_for_policy(cursor, facility_id=staff_request.facility_id)
    else:
        lock_inmate_accounts(cursor, by="inmate", key=staff_request.inmate_id)
    staff_request = StaffRequest.objects.select_for_update().get(pk=staff_request_id)
    _ensure_waiting(staff_request)
    return staff_request


def _may_decide(staff_request: StaffRequest, staff_id: int) -> bool:
    """Whether ``staff_id`` may approve or reject the request: never the requester."""
    if staff_request.is_policy_change:
        return people.may_approve_policy(
            approver_id=staff_id,
            requester_id=staff_request.requested_by_id,
            facility_id=staff_request.facility_id,
        )
    return people.may_approve(
        approver_id=staff_id,
        requester_id=staff_request.requested_by_id,
        facility_id=staff_request.facility_id,
    )


def _record_decision(staff_request, *, state, staff_id, note, now) -> None:
    staff_request.state = state
    staff_request.decided_by_id = staff_id
    staff_request.decided_at = now
    staff_request.decision_note = note.strip()
    staff_request.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])


def approve_request(
    *, staff_request_id: int, approver_id: int, note: str = "", now: dt.datetime | None = None
) -> StaffRequest:
    """A second trust officer approves: the request posts through the ledger service and is
    executed, or the ledger's refusal (insufficient funds, the cap, a frozen account) leaves it
    waiting. A policy change is approved by a second facility administrator (or a superuser)
    and saved to the facility, within the policy bounds read under the facility's lock."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        staff_request = _lock_request(cursor, staff_request_id)
        if not _may_decide(staff_request, approver_id):
            raise errors.NotPermitted(
                _(
                    "Only another facility administrator of this facility, or a superuser, can "
                    "approve it, never the person who asked."
                )
                if staff_request.is_policy_change
                else _(
                    "Only another trust officer assigned to this facility can approve it, "
                    "never the person who asked."
                )
            )
        _record_decision(
            staff_request, state=State.APPROVED, staff_id=approver_id, note=note, now=now
        )
        if staff_request.is_policy_change:
            _apply_policy_change(staff_request, now=now)
        else:
            _execute(staff_request, approved_by_id=approver_id, now=now)
    return staff_request


def reject_request(
    *, staff_request_id: int, staff_id: int, note: str = "", now: dt.datetime | None = None
) -> StaffRequest:
    """Someone who could approve the waiting request rejects it instead. Nothing moves. The
    requester cannot reject their own request: they withdraw it (``withdraw_request``)."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        staff_request = _lock_request(cursor, staff_request_id)
        if not _may_decide(staff_request, staff_id):
            raise errors.NotPermitted(
                _(
                    "Only someone who could approve it can reject it; the person who asked "
                    "withdraws it instead."
                )
            )
        _record_decision(staff_request, state=State.REJECTED, staff_id=staff_id, note=note, now=now)
    return staff_request


def withdraw_request(
    *, staff_request_id: int, staff_id: int, note: str = "", now: dt.datetime | None = None
) -> StaffRequest:
    """The requester takes back their own waiting request. Nothing moves; the request stays,
    ``withdrawn``, in the list and the audit trail. Nobody else can withdraw it."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        staff_request = _lock_request(cursor, staff_request_id)
        if staff_id != staff_request.requested_by_id:
            raise errors.NotPermitted(_("Only the person who asked can withdraw a request."))
        _record_decision(
            staff_request, state=State.WITHDRAWN, staff_id=staff_id, note=note, now=now
        )
    return staff_request


# --- facility policy changes --------------------------------------------------------------


def _policy_refusal(found: dict[str, str]) -> errors.InvalidPolicy:
    return errors.InvalidPolicy(" ".join(str(message) for message in found.values()))


def request_policy_change(
    *,
    facility_id: int,
    staff_id: int,
    reason: str,
    values: dict,
    now: dt.datetime | None = None,
) -> StaffRequest:
    """A facility administrator asks to change the facility's money policy (the fields of
    ``facilities.models.POLICY_CHANGE_FIELDS`` in ``values``; the others are not policy). Only
    the fields that differ are recorded, each with its value now and the one asked for. Values
    outside the bounds are refused here; nothing changes until another facility administrator
    of the facility, or a superuser, approves (``approve_request``)."""
    reason = checked_reason(reason)
    unknown = set(values) - set(POLICY_CHANGE_FIELDS)
    if unknown:
        raise errors.ValidationFailed(
            _("These are not policy fields: %(fields)s.") % {"fields": ", ".join(sorted(unknown))}
        )
    now = now or timezone.now()
    if not people.may_change_policy(staff_id=staff_id, facility_id=facility_id):
        raise errors.NotPermitted(
            _("Only a facility administrator of this facility can ask to change its policy.")
        )
    with transaction.atomic():
        facility = Facility.objects.filter(pk=facility_id).first()
        if facility is None:
            raise errors.FacilityNotFound()
        changes = {
            field: {"from": getattr(facility, field), "to": value}
            for field, value in values.items()
            if getattr(facility, field) != value
        }
        if not changes:
            raise errors.ValidationFailed(_("Nothing in the policy would change."))
        found = policy_bound_errors(
            {field: change["to"] for field, change in changes.items()},
            balance_cap_fen=facility.balance_cap_fen,
        )
        if found:
            raise _policy_refusal(found)
        staff_request = StaffRequest.objects.create(
            kind=Kind.POLICY_CHANGE,
            facility_id=facility_id,
            inmate=None,
            policy_changes=changes,
            reason=reason,
            needs_approval=True,
            requested_by_id=staff_id,
            requested_at=now,
        )
        notifications.email_approvers_on_commit(staff_request.pk)
    return staff_request


def _apply_policy_change(staff_request: StaffRequest, *, now) -> None:
    """Save the approved values to the facility (under its row lock, taken by the caller),
    checked again: a value that changed since the request was filed, or a bound the facility
    no longer allows (a lower balance cap), refuses the approval and the request waits."""
    facility = Facility.objects.get(pk=staff_request.facility_id)
    changes = staff_request.policy_changes
    if any(getattr(facility, field) != change["from"] for field, change in changes.items()):
        raise errors.InvalidPolicy(
            _(
                "The facility's policy has changed since this was asked for; reject it and ask "
                "again."
            )
        )
    found = policy_bound_errors(
        {field: change["to"] for field, change in changes.items()},
        balance_cap_fen=facility.balance_cap_fen,
    )
    if found:
        raise _policy_refusal(found)
    set_facility_policy(
        facility_id=facility.pk,
        values={field: change["to"] for field, change in changes.items()},
    )
    staff_request.state = State.EXECUTED
    staff_request.executed_at = now
    staff_request.save(update_fields=["state", "executed_at"])


def _existing_request(staff_request_id: int) -> StaffRequest:
    staff_request = StaffRequest.objects.filter(pk=staff_request_id).first()
    if staff_request is None:
        raise errors.ValidationFailed(_("No such request."))
    return staff_request


def _ensure_waiting(staff_request: StaffRequest) -> None:
    if staff_request.state != State.REQUESTED:
        raise errors.ValidationFailed(
            _("This request has already been %(state)s.")
            % {"state": staff_request.get_state_display().lower()}
        )


# Releasing an inmate closes their ledger and changes their record, which facilities owns and
# whose release service sits above the ledger: facilities registers it here at start-up
# (``FacilitiesConfig.ready``), so an approved release payout runs that one service.
_release_handlers: list = []


def register_release_handler(release_inmate) -> None:
    """Set the service an approved ``release_payout`` request runs, called with the request's
    inmate, requester, system key, approver and instant."""
    _release_handlers[:] = [release_inmate]


def _execute(staff_request: StaffRequest, *, approved_by_id: int | None, now) -> None:
    """Post the request through its ledger service, under the system key of the request."""
    common = {
        "inmate_id": staff_request.inmate_id,
        "reason": staff_request.reason,
        "staff_id": staff_request.requested_by_id,
        "idempotency_key": request_key(staff_request.pk),
        "idempotency_scope": SYSTEM_SCOPE,
        "now": now,
    }
    kind = staff_request.kind
    posted: Transaction | None = None
    event: AccountEvent | None = None
    if kind in (Kind.CREDIT, Kind.DEBIT):
        sign = 1 if kind == Kind.CREDIT else -1
        posted = adjust_balance(
            amount_fen=sign * staff_request.amount_fen, approved_by_id=approved_by_id, **common
        )
    elif kind == Kind.HOLD:
        posted = hold_funds(amount_fen=staff_request.amount_fen, **common)
    elif kind == Kind.HOLD_RELEASE:
        posted = release_hold(amount_fen=staff_request.amount_fen, **common)
    elif kind in (Kind.FREEZE, Kind.UNFREEZE):
        event = set_account_frozen(is_frozen=kind == Kind.FREEZE, **common)
    elif kind == Kind.REVERSAL:
        common.pop("inmate_id")
        posted = reverse_transaction(
            transaction_id=staff_request.target_transaction_id,
            approved_by_id=approved_by_id,
            **common,
        )
    elif kind == Kind.RELEASE_PAYOUT:
        common.pop("reason")
        _release_handlers[0](approved_by_id=approved_by_id, **common)
        event = AccountEvent.objects.filter(
            idempotency_scope=SYSTEM_SCOPE, idempotency_key=request_key(staff_request.pk)
        ).first()
        posted = event.transaction if event else None
    staff_request.state = State.EXECUTED
    staff_request.executed_at = now
    staff_request.transaction = posted
    staff_request.account_event = event
    staff_request.save(update_fields=["state", "executed_at", "transaction", "account_event"])
