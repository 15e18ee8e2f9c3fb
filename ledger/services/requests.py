"""Maker-checker money requests from trust officers (``StaffRequest``).

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

Lock order as everywhere: the inmate's accounts first (``lock_inmate_accounts``), then the
request row. Two approvers racing both wait for the accounts; the second finds the request
already decided.

Over 400 lines because a request's whole life is here (preview, filing, approval, rejection,
execution per kind): each step re-checks what the one before decided, and reads best beside it.
"""

import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import selectors as people
from commissary import errors
from facilities.models import Inmate

from ..locks import lock_inmate_accounts
from ..models import AccountEvent, StaffRequest, Transaction
from ..selectors import (
    inmate_balance,
    needs_approval,
    release_needs_approval,
    release_payout_fen,
    reversal_judged_fen,
)
from .posting import SYSTEM_SCOPE, checked_amount, checked_reason
from .staff import (
    REVERSIBLE_KINDS,
    adjust_balance,
    ensure_staff_may_act,
    hold_funds,
    release_hold,
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

    @property
    def balance_room_before_fen(self) -> int:
        total = self.spendable_before_fen + self.held_before_fen + self.pending_fen
        return self.balance_cap_fen - total

    @property
    def balance_room_after_fen(self) -> int:
        total = self.spendable_after_fen + self.held_after_fen + self.pending_fen
        return self.balance_cap_fen - total


def _legs_of_reversal(original: Transaction, inmate) -> tuple[int, int]:
    """How a reversal of ``original`` would change the inmate's (spendable, held)."""
    spendable_change = held_change = 0
    for kind, amount_fen in original.entries.filter(account__inmate=inmate).values_list(
        "account__kind", "amount_fen"
    ):
        if kind == "spendable":
            spendable_change -= amount_fen
        elif kind == "held":
            held_change -= amount_fen
    return spendable_change, held_change


def _reversal_target(inmate, transaction_id) -> Transaction:
    original = Transaction.objects.filter(pk=transaction_id, inmate=inmate).first()
    if original is None:
        raise errors.TransactionNotFound(_("That transaction is not one of this inmate's."))
    if original.kind not in REVERSIBLE_KINDS:
        raise errors.NotReversible(
            _("Only staff adjustments, holds and hold releases can be reversed.")
        )
    return original


def preview_request(
    *, kind: str, inmate, amount_fen: int | None = None, transaction_id: int | None = None
) -> RequestPreview:
    """What the request would do to the inmate's money if executed now. Reads only; the
    service re-checks everything under the lock when it runs."""
    money = inmate_balance(inmate=inmate)
    spendable, held, is_frozen = money.spendable_fen, money.held_fen, money.is_frozen
    paid_out = 0
    moved_fen = amount_fen or 0
    if kind == Kind.CREDIT:
        spendable += moved_fen
    elif kind == Kind.DEBIT:
        spendable -= moved_fen
    elif kind == Kind.HOLD:
        spendable, held = spendable - moved_fen, held + moved_fen
    elif kind == Kind.HOLD_RELEASE:
        spendable, held = spendable + moved_fen, held - moved_fen
    elif kind in (Kind.FREEZE, Kind.UNFREEZE):
        is_frozen = kind == Kind.FREEZE
    elif kind == Kind.REVERSAL:
        original = _reversal_target(inmate, transaction_id)
        spendable_change, held_change = _legs_of_reversal(original, inmate)
        spendable, held = spendable + spendable_change, held + held_change
    elif kind == Kind.RELEASE_PAYOUT:
        paid_out, spendable, held = spendable + held, 0, 0
    return RequestPreview(
        currency=money.currency,
        spendable_before_fen=money.spendable_fen,
        held_before_fen=money.held_fen,
        spendable_after_fen=spendable,
        held_after_fen=held,
        pending_fen=money.pending_fen,
        balance_cap_fen=money.balance_cap_fen,
        paid_out_fen=paid_out,
        is_frozen_after=is_frozen,
        needs_approval=_needs_approval(
            kind,
            inmate=inmate,
            amount_fen=amount_fen,
            transaction_id=transaction_id,
            spendable_fen=money.spendable_fen,
            held_fen=money.held_fen,
        ),
    )


def _needs_approval(
    kind, *, inmate, amount_fen, transaction_id, spendable_fen: int, held_fen: int
) -> bool:
    threshold = inmate.facility.adjustment_approval_threshold_fen
    if kind == Kind.CREDIT:
        return True
    if kind == Kind.DEBIT:
        return needs_approval(amount_fen=-amount_fen, approval_threshold_fen=threshold)
    if kind == Kind.REVERSAL:
        # As reverse_transaction judges it under the lock.
        original = _reversal_target(inmate, transaction_id)
        spendable_change, held_change = _legs_of_reversal(original, inmate)
        judged_fen = reversal_judged_fen(
            money_added_fen=spendable_change + held_change,
            amounts_moved_fen=original.entries.values_list("amount_fen", flat=True),
        )
        return needs_approval(amount_fen=judged_fen, approval_threshold_fen=threshold)
    if kind == Kind.RELEASE_PAYOUT:
        return release_needs_approval(
            payout_fen=release_payout_fen(spendable_fen=spendable_fen, held_fen=held_fen),
            approval_threshold_fen=threshold,
        )
    return False  # holds, their release, freezes: the inmate's money stays the inmate's


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
    """Record a trust officer's request. One that needs no second trust officer is executed
    at once, in the same database transaction (refused: nothing is recorded)."""
    if kind not in Kind.values:
        raise errors.ValidationFailed(_("Choose what should be done."))
    reason = checked_reason(reason)
    amount_fen = checked_amount(amount_fen) if kind in StaffRequest.AMOUNT_KINDS else None
    if kind != Kind.REVERSAL:
        transaction_id = None
    now = now or timezone.now()
    inmate = Inmate.objects.select_related("facility").filter(pk=inmate_id).first()
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
        waits = _needs_approval(
            kind,
            inmate=inmate,
            amount_fen=amount_fen,
            transaction_id=transaction_id,
            spendable_fen=locked.spendable_fen,
            held_fen=locked.held_fen,
        )
        staff_request = StaffRequest.objects.create(
            kind=kind,
            facility_id=inmate.facility_id,
            inmate_id=inmate_id,
            amount_fen=amount_fen,
            target_transaction_id=transaction_id,
            reason=reason,
            needs_approval=waits,
            requested_by_id=staff_id,
            requested_at=now,
        )
        if not waits:
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
            payout_fen=payout_fen, approval_threshold_fen=locked.approval_threshold_fen
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


def approve_request(
    *, staff_request_id: int, approver_id: int, note: str = "", now: dt.datetime | None = None
) -> StaffRequest:
    """A second trust officer approves: the request posts through the ledger service and is
    executed, or the ledger's refusal (insufficient funds, the cap) leaves it waiting."""
    now = now or timezone.now()
    staff_request = _existing_request(staff_request_id)
    with transaction.atomic(), connection.cursor() as cursor:
        lock_inmate_accounts(cursor, by="inmate", key=staff_request.inmate_id)
        staff_request = StaffRequest.objects.select_for_update().get(pk=staff_request_id)
        _ensure_waiting(staff_request)
        if not people.may_approve(
            approver_id=approver_id,
            requester_id=staff_request.requested_by_id,
            facility_id=staff_request.facility_id,
        ):
            raise errors.NotPermitted(
                _(
                    "Only another trust officer assigned to this facility can approve it, "
                    "never the person who asked."
                )
            )
        staff_request.state = State.APPROVED
        staff_request.decided_by_id = approver_id
        staff_request.decided_at = now
        staff_request.decision_note = note.strip()
        staff_request.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
        _execute(staff_request, approved_by_id=approver_id, now=now)
    return staff_request


def reject_request(
    *, staff_request_id: int, staff_id: int, note: str = "", now: dt.datetime | None = None
) -> StaffRequest:
    """Reject (or, by the requester, withdraw) a waiting request. Nothing moves."""
    now = now or timezone.now()
    staff_request = _existing_request(staff_request_id)
    with transaction.atomic(), connection.cursor() as cursor:
        lock_inmate_accounts(cursor, by="inmate", key=staff_request.inmate_id)
        staff_request = StaffRequest.objects.select_for_update().get(pk=staff_request_id)
        _ensure_waiting(staff_request)
        is_requester = staff_id == staff_request.requested_by_id
        if not is_requester and not people.may_approve(
            approver_id=staff_id,
            requester_id=staff_request.requested_by_id,
            facility_id=staff_request.facility_id,
        ):
            raise errors.NotPermitted(
                _("Only a trust officer of this facility, or the person who asked, can reject it.")
            )
        staff_request.state = State.REJECTED
        staff_request.decided_by_id = staff_id
        staff_request.decided_at = now
        staff_request.decision_note = note.strip()
        staff_request.save(update_fields=["state", "decided_by", "decided_at", "decision_note"])
    return staff_request


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
