"""Staff operations on an inmate's money: adjustments, holds, freezes and reversals.

Invariant 7: apart from verified deposits and refunds of the inmate's own purchases, money
reaches an inmate only through an audited staff adjustment (or a reversal that adds money),
and every one of those needs a second staff member's approval, as does a debit above the
facility's threshold. Who may request and who may approve is decided by
``accounts.selectors``, checked here under the inmate's lock so that a withdrawn assignment
cannot slip in between the check and the posting.
"""

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import selectors as people
from commissary import errors

from ..locks import LockedInmate, lock_inmate_accounts
from ..models import AccountEvent, Transaction
from ..selectors import needs_approval, reversal_judged_fen
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


def _ensure_approved(
    locked: LockedInmate, *, amount_fen: int, staff_id: int, approved_by_id: int | None
) -> None:
    ensure_staff_may_act(staff_id=staff_id, facility_id=locked.facility_id)
    if not needs_approval(
        amount_fen=amount_fen, approval_threshold_fen=locked.approval_threshold_fen
    ):
        return
    ensure_second_approver(locked, staff_id=staff_id, approved_by_id=approved_by_id)


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
            _ensure_approved(
                locked, amount_fen=amount_fen, staff_id=staff_id, approved_by_id=approved_by_id
            )
            if amount_fen > locked.room_under_balance_cap_fen:
                raise errors.BalanceCapExceeded()
            if -amount_fen > locked.spendable_fen:
                raise errors.InsufficientFunds()
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
            if to_held:
                if locked.spendable_fen < amount_fen:
                    raise errors.InsufficientFunds()
                legs = [(locked.spendable_id, -amount_fen), (locked.held_id, amount_fen)]
            else:
                if locked.held_fen < amount_fen:
                    raise errors.InsufficientFunds(_("Less than that is held."))
                if locked.spendable_fen + locked.pending_fen + amount_fen > locked.balance_cap_fen:
                    raise errors.BalanceCapExceeded(
                        _("Releasing this much would take spendable money over the balance cap.")
                    )
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
            _ensure_approved(
                locked,
                amount_fen=reversal_judged_fen(
                    money_added_fen=new_money, amounts_moved_fen=[a for _, a in legs]
                ),
                staff_id=staff_id,
                approved_by_id=approved_by_id,
            )
            if new_money > locked.room_under_balance_cap_fen or (
                new_spendable + locked.pending_fen > locked.balance_cap_fen
            ):
                raise errors.BalanceCapExceeded()
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
