"""Staff operations on an inmate's money: adjustments, holds, freezes and reversals.

Invariant 7: apart from verified deposits and refunds of the inmate's own purchases, money
reaches an inmate only through an audited staff adjustment (or a reversal that adds money),
and every one of those needs a second staff member's approval, as does a debit above the
facility's threshold. Who may request and who may approve is decided by
``accounts.selectors``, checked here under the inmate's lock so that a withdrawn assignment
cannot slip in between the check and the posting.

**Debits cannot be split under the threshold.** The threshold applies to the sum of one staff
member's debits of one inmate made without a second approver (adjustment debits, and
reversals that take money away) over the facility's calendar day and the facility's approval
window (``approval_window_hours`` back from now), whichever reaches further: ¥1, ¥300 and
¥199 debits and a ¥10 reversal by one trust officer against a ¥500 threshold make the last one
wait. The sum is read after the inmate's accounts are locked, so two debits racing each other
are judged one after the other and cannot both slip under it.

**Freeze rules.** A frozen account keeps its money where it is:
- refused with ``account_frozen``: adjustment credits and debits (approved or not),
  reversals, and releases of held money back to spendable;
- allowed: holding money (moving spendable to held protects it), unfreezing, credits of
  deposits already paid and refunds of the inmate's own orders (the family's money and the
  inmate's own are never stranded);
- a release of the inmate still closes the account (a release from custody is not the
  commissary's to stop), but a staff member's release of a frozen account pays out only with a
  second trust officer's approval, whatever the amount (``payout_needs_approval``).
Kiosk purchases and new deposits are refused while frozen (``account_frozen``).

About 590 lines: every operation opens the same way under the inmate's lock, but the order of
its checks (frozen, permission, approval) decides which refusal the caller sees and differs by
operation, so they stay side by side rather than behind one shared opening.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import selectors as people
from commissary import errors
from facilities.models import local_date

from ..locks import LockedInmate, lock_inmate_accounts
from ..models import AccountEvent, Transaction
from ..selectors import needs_approval
from .posting import (
    checked_amount,
    checked_key,
    checked_reason,
    checked_scope,
    ensure_open,
    execute,
    post,
    request_hash_of,
    run_idempotent,
    run_posting,
    staff_scope,
)


def ensure_staff_may_act(*, staff_id: int | None, facility_id: int) -> None:
    if staff_id is None or not people.may_request(staff_id=staff_id, facility_id=facility_id):
        raise errors.NotPermitted(
            _("Only an active staff member assigned to the inmate's facility can do this.")
        )


def ensure_second_approver(
    locked: LockedInmate,
    *,
    staff_id: int | None,
    approved_by_id: int | None,
    missing_message: str | None = None,
) -> None:
    """Refuse unless ``approved_by_id`` may approve ``staff_id``'s action at the inmate's
    facility (``accounts.selectors.may_approve``), read under the inmate's lock."""
    if approved_by_id is None:
        raise errors.ApprovalRequired(missing_message)
    if not people.may_approve(
        approver_id=approved_by_id, requester_id=staff_id, facility_id=locked.facility_id
    ):
        raise errors.ApprovalRequired(
            _(
                "The approver must be another active trust officer assigned to the inmate's "
                "facility."
            )
        )


def approval_window_start(now: dt.datetime, *, timezone_name: str, window_hours: int):
    """Where the sum of a staff member's unapproved debits starts: the facility's local
    midnight of ``now`` or ``window_hours`` before ``now``, whichever is earlier (so neither a
    local day nor a stretch across midnight can be split)."""
    midnight = dt.datetime.combine(
        local_date(now, timezone_name), dt.time.min, tzinfo=ZoneInfo(timezone_name)
    )
    return min(midnight, now - dt.timedelta(hours=window_hours))


_UNAPPROVED_DEBITS_SQL = """
SELECT COALESCE(SUM(-taken), 0) FROM (
  SELECT SUM(e.amount_fen) AS taken
  FROM ledger_transaction t
  JOIN ledger_entry e ON e.transaction_id = t.id AND e.account_id IN (%s, %s)
    AND e.created_at >= %s  -- an entry is dated as its transaction: only recent partitions
  WHERE t.inmate_id = %s AND t.created_by_id = %s
    AND (t.approved_by_id IS NULL OR t.approved_by_id = t.created_by_id)
    AND t.kind IN (%s, %s) AND t.created_at >= %s
  GROUP BY t.id
) AS moved WHERE taken < 0
"""


def unapproved_debits_fen(cursor, locked: LockedInmate, *, staff_id: int, now) -> int:
    """What ``staff_id`` took from the inmate without a second approver in the approval
    window (adjustment debits and reversals that removed money), in fen. Read under the
    inmate's lock by the services, so a debit racing this one has either committed (and is
    counted) or waits behind it."""
    since = approval_window_start(
        now, timezone_name=locked.timezone, window_hours=locked.approval_window_hours
    )
    execute(
        cursor,
        _UNAPPROVED_DEBITS_SQL,
        [
            locked.spendable_id,
            locked.held_id,
            since,
            locked.inmate_id,
            staff_id,
            Transaction.Kind.ADJUSTMENT,
            Transaction.Kind.REVERSAL,
            since,
        ],
    )
    return int(cursor.fetchone()[0])


def debit_needs_approval(
    cursor, locked: LockedInmate, *, amount_fen: int, taken_fen: int, staff_id: int | None, now
) -> bool:
    """The approval rule with splitting closed: ``amount_fen`` is judged as the one rule
    judges it (``selectors.needs_approval``), and money it takes from the inmate
    (``taken_fen``) is added to what the same staff member took unapproved in the window."""
    threshold_fen = locked.approval_threshold_fen
    if needs_approval(amount_fen=amount_fen, approval_threshold_fen=threshold_fen):
        return True
    if taken_fen <= 0 or staff_id is None:
        return False
    earlier_fen = unapproved_debits_fen(cursor, locked, staff_id=staff_id, now=now)
    return earlier_fen + taken_fen > threshold_fen


SPLIT_NEEDS_APPROVAL = gettext_lazy(
    "Together with your other debits of this inmate today, this goes over the facility's "
    "threshold: it needs a second trust officer's approval."
)


def _ensure_approved(
    cursor,
    locked: LockedInmate,
    *,
    amount_fen: int,
    taken_fen: int,
    staff_id: int,
    approved_by_id: int | None,
    now,
) -> None:
    ensure_staff_may_act(staff_id=staff_id, facility_id=locked.facility_id)
    if approved_by_id is not None:
        # An approver named on a posting is always one who may approve, even where none was
        # needed: the journal's approver is what takes a debit out of the unapproved sum.
        ensure_second_approver(locked, staff_id=staff_id, approved_by_id=approved_by_id)
        return
    if needs_approval(amount_fen=amount_fen, approval_threshold_fen=locked.approval_threshold_fen):
        raise errors.ApprovalRequired()
    if not debit_needs_approval(
        cursor, locked, amount_fen=amount_fen, taken_fen=taken_fen, staff_id=staff_id, now=now
    ):
        return
    ensure_second_approver(
        locked,
        staff_id=staff_id,
        approved_by_id=approved_by_id,
        missing_message=str(SPLIT_NEEDS_APPROVAL),
    )


FROZEN_REFUSAL = gettext_lazy(
    "The inmate's account is frozen: staff credits, debits, reversals and releases of held "
    "money wait until it is unfrozen."
)


def ensure_not_frozen(locked: LockedInmate) -> None:
    """The freeze rules (module docstring): what a frozen account refuses."""
    if locked.is_frozen:
        raise errors.AccountFrozen(str(FROZEN_REFUSAL))


# --- what is possible at all: the same words for the requester and the approver -----------


def check_adjustment(*, amount_fen: int, spendable_fen: int, room_fen: int) -> None:
    """Refuse an adjustment (positive credits) the inmate's money cannot take."""
    if amount_fen > room_fen:
        raise errors.BalanceCapExceeded()
    if -amount_fen > spendable_fen:
        raise errors.InsufficientFunds()


def check_hold_move(
    *,
    amount_fen: int,
    to_held: bool,
    spendable_fen: int,
    held_fen: int,
    pending_fen: int,
    balance_cap_fen: int,
) -> None:
    """Refuse a hold (``to_held``) or a release of held money the balances cannot take."""
    if to_held:
        if spendable_fen < amount_fen:
            raise errors.InsufficientFunds()
        return
    if held_fen < amount_fen:
        raise errors.InsufficientFunds(_("Less than that is held."))
    if spendable_fen + pending_fen + amount_fen > balance_cap_fen:
        raise errors.BalanceCapExceeded(
            _("Releasing this much would take spendable money over the balance cap.")
        )


def check_reversal(
    *,
    spendable_fen: int,
    held_fen: int,
    new_spendable_fen: int,
    new_held_fen: int,
    pending_fen: int,
    balance_cap_fen: int,
) -> None:
    """Refuse a reversal that would leave a balance below zero or go over the cap."""
    if new_spendable_fen < 0 or new_held_fen < 0:
        raise errors.InsufficientFunds()
    new_money = new_spendable_fen + new_held_fen - spendable_fen - held_fen
    room_fen = max(0, balance_cap_fen - spendable_fen - held_fen - pending_fen)
    if new_money > room_fen or new_spendable_fen + pending_fen > balance_cap_fen:
        raise errors.BalanceCapExceeded()


def adjust_balance(
    *,
    inmate_id: int,
    amount_fen: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    approved_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """A staff correction of the inmate's spendable money (positive credits, negative
    debits), against the adjustments account. Credits are new money: they obey the balance
    cap and always need a second staff member's approval; debits need it above the
    facility's threshold."""
    amount_fen = checked_amount(amount_fen, allow_negative=True)
    reason = checked_reason(reason)
    scope = checked_scope(idempotency_scope, actor_id=staff_id, actor_scope=staff_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "adjust_balance",
        inmate_id=inmate_id,
        amount_fen=amount_fen,
        reason=reason,
        staff_id=staff_id,
        approved_by_id=approved_by_id,
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
            ensure_open(locked)
            ensure_not_frozen(locked)
            _ensure_approved(
                cursor,
                locked,
                amount_fen=amount_fen,
                taken_fen=max(0, -amount_fen),
                staff_id=staff_id,
                approved_by_id=approved_by_id,
                now=now,
            )
            check_adjustment(
                amount_fen=amount_fen,
                spendable_fen=locked.spendable_fen,
                room_fen=locked.room_under_balance_cap_fen,
            )
            return post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.ADJUSTMENT,
                legs=[(locked.adjustments_id, -amount_fen), (locked.spendable_id, amount_fen)],
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                created_by_id=staff_id,
                approved_by_id=approved_by_id,
                now=now,
            )

    return run_posting(
        attempt, scope=scope, idempotency_key=idempotency_key, request_hash=request_hash
    )


def _move_between_own_accounts(
    *,
    inmate_id: int,
    amount_fen: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    idempotency_scope: str | None,
    to_held: bool,
    now: dt.datetime | None,
) -> Transaction:
    amount_fen = checked_amount(amount_fen)
    reason = checked_reason(reason)
    scope = checked_scope(idempotency_scope, actor_id=staff_id, actor_scope=staff_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    operation = "hold_funds" if to_held else "release_hold"
    request_hash = request_hash_of(
        operation, inmate_id=inmate_id, amount_fen=amount_fen, reason=reason, staff_id=staff_id
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
            ensure_open(locked)
            ensure_staff_may_act(staff_id=staff_id, facility_id=locked.facility_id)
            if not to_held:
                ensure_not_frozen(locked)  # a hold only protects money, so it is allowed
            check_hold_move(
                amount_fen=amount_fen,
                to_held=to_held,
                spendable_fen=locked.spendable_fen,
                held_fen=locked.held_fen,
                pending_fen=locked.pending_fen,
                balance_cap_fen=locked.balance_cap_fen,
            )
            if to_held:
                legs = [(locked.spendable_id, -amount_fen), (locked.held_id, amount_fen)]
            else:
                legs = [(locked.held_id, -amount_fen), (locked.spendable_id, amount_fen)]
            kind = Transaction.Kind.HOLD if to_held else Transaction.Kind.HOLD_RELEASE
            return post(
                cursor,
                locked=locked,
                kind=kind,
                legs=legs,
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                created_by_id=staff_id,
                now=now,
            )

    return run_posting(
        attempt, scope=scope, idempotency_key=idempotency_key, request_hash=request_hash
    )


def hold_funds(
    *,
    inmate_id: int,
    amount_fen: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """Move spendable money to held money: it still belongs to the inmate and still counts
    against the balance cap, but cannot be spent until released."""
    return _move_between_own_accounts(
        inmate_id=inmate_id,
        amount_fen=amount_fen,
        reason=reason,
        staff_id=staff_id,
        idempotency_key=idempotency_key,
        idempotency_scope=idempotency_scope,
        to_held=True,
        now=now,
    )


def release_hold(
    *,
    inmate_id: int,
    amount_fen: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """Move held money back to spendable, as far as spendable + pending stays under the cap."""
    return _move_between_own_accounts(
        inmate_id=inmate_id,
        amount_fen=amount_fen,
        reason=reason,
        staff_id=staff_id,
        idempotency_key=idempotency_key,
        idempotency_scope=idempotency_scope,
        to_held=False,
        now=now,
    )


def set_account_frozen(
    *,
    inmate_id: int,
    is_frozen: bool,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    now: dt.datetime | None = None,
) -> AccountEvent:
    """Freeze or unfreeze the inmate's account, recording who and why: a frozen account can
    neither spend nor take new deposits; credits of deposits already paid and refunds still
    go through. A replay returns the first event; freezing a frozen account is refused."""
    reason = checked_reason(reason)
    scope = checked_scope(idempotency_scope, actor_id=staff_id, actor_scope=staff_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    kind = AccountEvent.Kind.FROZEN if is_frozen else AccountEvent.Kind.UNFROZEN
    request_hash = request_hash_of(
        "set_account_frozen",
        inmate_id=inmate_id,
        is_frozen=is_frozen,
        reason=reason,
        staff_id=staff_id,
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
            ensure_open(locked)
            ensure_staff_may_act(staff_id=staff_id, facility_id=locked.facility_id)
            if locked.is_frozen == is_frozen:
                raise errors.ValidationFailed(
                    _("The account is already frozen.")
                    if is_frozen
                    else _("The account is not frozen.")
                )
            execute(
                cursor,
                "UPDATE ledger_account SET is_frozen = %s WHERE id = %s",
                [is_frozen, locked.spendable_id],
            )
            return AccountEvent.objects.create(
                kind=kind,
                inmate_id=locked.inmate_id,
                facility_id=locked.facility_id,
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                reason=reason,
                created_by_id=staff_id,
                created_at=now,
            ).pk

    event_id = run_idempotent(
        attempt,
        lookup=AccountEvent.lookup(scope, idempotency_key),
        request_hash=request_hash,
    )
    return AccountEvent.objects.get(pk=event_id)


def reversal_judged_amount_fen(new_money_fen: int, legs) -> int:
    """How the approval rule judges a reversal: money it adds is a credit; one that only moves
    or removes money counts as a debit of the largest amount it moves."""
    return new_money_fen or -max(abs(amount) for _, amount in legs)


REVERSIBLE_KINDS = (
    Transaction.Kind.ADJUSTMENT,
    Transaction.Kind.HOLD,
    Transaction.Kind.HOLD_RELEASE,
)


def reverse_transaction(
    *,
    transaction_id: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    approved_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """Post the mirror image of a staff transaction (the journal is append-only, so this is
    how a mistake is corrected). Deposits are refunded through their provider and purchases
    through ``refund_purchase`` instead, so that periods and sales stay right. A reversal
    that adds money to the inmate needs a second staff member's approval like a credit."""
    reason = checked_reason(reason)
    scope = checked_scope(idempotency_scope, actor_id=staff_id, actor_scope=staff_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "reverse_transaction",
        transaction_id=transaction_id,
        reason=reason,
        staff_id=staff_id,
        approved_by_id=approved_by_id,
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            original = Transaction.objects.filter(pk=transaction_id).first()
            if original is None or original.inmate_id is None:
                raise errors.TransactionNotFound()
            if original.kind not in REVERSIBLE_KINDS:
                raise errors.NotReversible()
            locked = lock_inmate_accounts(cursor, by="transaction", key=transaction_id)
            ensure_open(locked)
            ensure_not_frozen(locked)
            if Transaction.objects.filter(reverses_id=transaction_id).exists():
                raise errors.NotReversible(_("This transaction has already been reversed."))
            legs = [
                (account_id, -amount)
                for account_id, amount in original.entries.values_list("account_id", "amount_fen")
            ]
            new_spendable = locked.spendable_fen + sum(
                a for i, a in legs if i == locked.spendable_id
            )
            new_held = locked.held_fen + sum(a for i, a in legs if i == locked.held_id)
            if new_spendable < 0 or new_held < 0:
                raise errors.InsufficientFunds()
            new_money = new_spendable + new_held - locked.spendable_fen - locked.held_fen
            # Money added is a credit; a reversal that only moves or removes money is judged
            # by the largest amount it moves, like a debit, and what it removes counts towards
            # the requester's unapproved debits of the day.
            _ensure_approved(
                cursor,
                locked,
                amount_fen=reversal_judged_amount_fen(new_money, legs),
                taken_fen=max(0, -new_money),
                staff_id=staff_id,
                approved_by_id=approved_by_id,
                now=now,
            )
            check_reversal(
                spendable_fen=locked.spendable_fen,
                held_fen=locked.held_fen,
                new_spendable_fen=new_spendable,
                new_held_fen=new_held,
                pending_fen=locked.pending_fen,
                balance_cap_fen=locked.balance_cap_fen,
            )
            return post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.REVERSAL,
                legs=legs,
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                reverses_id=transaction_id,
                created_by_id=staff_id,
                approved_by_id=approved_by_id,
                now=now,
            )

    return run_posting(
        attempt, scope=scope, idempotency_key=idempotency_key, request_hash=request_hash
    )
