"""Ledger accounts over an inmate's stay and a facility's life: opening them, moving them with
a transferred inmate, closing them on release, and changing a facility's caps.

Lock order (``ledger.locks``): an inmate's account rows first (several inmates: in primary-key
order), then the rows the operation writes, and parent rows (inmate, facility) only
``FOR NO KEY UPDATE``, which does not conflict with the ``FOR KEY SHARE`` that every ledger
insert takes on them. So a transfer, a release or a cap change never deadlocks against the
deposits and purchases running beside it.
"""

import datetime as dt
from collections.abc import Sequence

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commissary import errors
from facilities.records import set_facility_caps

from .. import memos
from ..locks import lock_facility_for_policy, lock_inmate_accounts, lock_inmates_accounts
from ..models import Account, AccountEvent, Transaction
from ..selectors import release_needs_approval, release_payout_fen
from .posting import (
    checked_key,
    checked_scope,
    ensure_open,
    execute,
    post,
    request_hash_of,
    staff_scope,
)
from .staff import ensure_second_approver

SYSTEM_ACCOUNT_KINDS = (
    Account.Kind.SALES,
    Account.Kind.FEES,
    Account.Kind.PAYOUTS,
    Account.Kind.ADJUSTMENTS,
)
CAP_CHANGE_CHUNK = 500  # inmates locked per statement when a facility's caps change


def open_facility_accounts(
    *, facility, providers: Sequence[str] = ("sandbox", "alipay", "wechat")
) -> None:
    """Create the facility's system accounts (idempotent)."""
    wanted = [(kind, "") for kind in SYSTEM_ACCOUNT_KINDS]
    wanted += [(Account.Kind.CLEARING, provider) for provider in providers]
    with transaction.atomic():
        for kind, provider in wanted:
            Account.objects.get_or_create(
                facility=facility,
                inmate=None,
                kind=kind,
                provider=provider,
                defaults={"currency": facility.currency, "balance_fen": None},
            )


def open_inmate_accounts(*, inmate) -> None:
    """Open the inmate's spendable and held accounts, empty, carrying the facility's cap."""
    open_accounts_for_inmates(inmates=[inmate])


def _replayed_event(scope: str, idempotency_key: str, request_hash: str) -> AccountEvent | None:
    earlier = AccountEvent.lookup(scope, idempotency_key)()
    if earlier is None:
        return None
    if earlier[1] != request_hash:
        raise errors.IdempotencyConflict()
    event = AccountEvent.objects.get(pk=earlier[0])
    event.is_replay = True
    return event


def _record_event(kind, *, key: tuple[str, str, str], staff_id, now, **where) -> AccountEvent:
    """The event a fresh (not replayed) move or closing leaves, under its idempotency key."""
    scope, idempotency_key, request_hash = key
    event = AccountEvent.objects.create(
        kind=kind,
        idempotency_scope=scope,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        reason="",
        created_by_id=staff_id,
        created_at=now,
        **where,
    )
    event.is_replay = False
    return event


def move_inmate_ledger(
    *,
    inmate_id: int,
    to_facility_id: int,
    staff_id: int | None,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    now: dt.datetime | None = None,
) -> AccountEvent:
    """Point the inmate's one ledger at a new facility and its caps. Spendable money over the
    new balance cap is moved to held money (it stays the inmate's); the open period keeps what
    was received, under the larger of the two monthly caps for the rest of the month.

    Call inside the caller's transaction (the transfer also updates the inmate row, after
    this has taken the account locks). A replay returns the first move."""
    scope = checked_scope(idempotency_scope, actor_id=staff_id, actor_scope=staff_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "move_inmate_ledger", inmate_id=inmate_id, to_facility=to_facility_id, staff_id=staff_id
    )
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        # The earlier request is looked up under the lock (invariant 6): an identical request
        # running at the same moment has committed by now, and this returns its result
        # instead of "already there" or "released".
        replayed = _replayed_event(scope, idempotency_key, request_hash)
        if replayed is not None:
            return replayed
        ensure_open(locked)
        if locked.facility_id == to_facility_id:
            raise errors.ValidationFailed(_("The inmate is already at that facility."))
        # The destination's caps are read under its row lock, so a cap change running beside
        # this either finishes first (and this reads its caps) or finds this account there.
        policy = lock_facility_for_policy(cursor, facility_id=to_facility_id)
        if locked.pending_fen:
            raise errors.ValidationFailed(
                _(
                    "Deposits are awaiting payment for this inmate; transfer once they have "
                    "settled or expired."
                )
            )
        if policy.currency != locked.currency:
            raise errors.ValidationFailed(_("The facilities keep money in different currencies."))
        excess_fen = max(0, locked.spendable_fen - policy.balance_cap_fen)
        transaction_id = None
        if excess_fen:
            transaction_id = post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.TRANSFER_EXCESS,
                legs=[(locked.spendable_id, -excess_fen), (locked.held_id, excess_fen)],
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=memos.transfer_excess_memo(policy.name),
                created_by_id=staff_id,
                now=now,
            )
        execute(
            cursor,
            "UPDATE ledger_account SET facility_id = %s, "
            "balance_cap_fen = CASE WHEN kind = 'spendable' THEN %s ELSE NULL END "
            "WHERE id IN (%s, %s)",
            [to_facility_id, policy.balance_cap_fen, locked.spendable_id, locked.held_id],
        )
        execute(
            cursor,
            "UPDATE ledger_monthlyperiod SET cap_fen = CASE WHEN cap_fen > %s THEN cap_fen "
            "ELSE %s END WHERE inmate_id = %s AND closed_at IS NULL",
            [policy.monthly_cap_fen, policy.monthly_cap_fen, inmate_id],
        )
        return _record_event(
            AccountEvent.Kind.MOVED,
            inmate_id=inmate_id,
            facility_id=to_facility_id,
            from_facility_id=locked.facility_id,
            transaction_id=transaction_id,
            key=(scope, idempotency_key, request_hash),
            staff_id=staff_id,
            now=now,
        )


def close_inmate_ledger(
    *,
    inmate_id: int,
    staff_id: int | None,
    idempotency_key: str,
    idempotency_scope: str | None = None,
    approved_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> AccountEvent:
    """On release: expire deposits still awaiting payment (their room is given back), pay
    out spendable and held money, and close the accounts. Returns the closing event, whose
    ``transaction`` is the payout (None when there was nothing to pay out). A replay returns
    the first closing.

    The payout is a debit of the inmate: a staff member's release paying out more than the
    facility's threshold needs a second trust officer (``approved_by_id``, judged by
    ``accounts.selectors.may_approve`` under the lock), as a staff debit does; without one it
    is refused and nothing changes (staff ask through a ``release_payout`` money request).
    A frozen account is closed on release too, but a staff member's release pays its money
    out only with a second trust officer, whatever the amount (the freeze rules in
    ``services.staff``).

    Long (about 90 lines) because the expiries, the payout and the closing decide on one read
    under one lock, in one transaction: split, each part would need that read passed in."""
    scope = checked_scope(idempotency_scope, actor_id=staff_id, actor_scope=staff_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    # The approver joins the fingerprint only when there is one, so the keys of releases
    # recorded before approvals existed still replay.
    approval = {"approved_by_id": approved_by_id} if approved_by_id is not None else {}
    request_hash = request_hash_of(
        "close_inmate_ledger", inmate_id=inmate_id, staff_id=staff_id, **approval
    )
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        # The earlier request is looked up under the lock (invariant 6): an identical request
        # running at the same moment has committed by now, and this returns its result
        # instead of "already there" or "released".
        replayed = _replayed_event(scope, idempotency_key, request_hash)
        if replayed is not None:
            return replayed
        ensure_open(locked)
        # A held deposit is paid money the family may get back: security staff decide it
        # (accept credits, reject refunds through the provider) before the inmate leaves.
        execute(
            cursor,
            "SELECT count(*) FROM ledger_deposit WHERE inmate_id = %s AND status = 'held'",
            [inmate_id],
        )
        if cursor.fetchone()[0]:
            raise errors.DepositsHeldForReview()
        payout_fen = release_payout_fen(
            spendable_fen=locked.spendable_fen, held_fen=locked.held_fen
        )
        if staff_id is not None and release_needs_approval(
            payout_fen=payout_fen,
            approval_threshold_fen=locked.approval_threshold_fen,
            is_frozen=locked.is_frozen,
        ):
            ensure_second_approver(
                locked,
                staff_id=staff_id,
                approved_by_id=approved_by_id,
                missing_message=_(
                    "Paying out this much on release needs a second trust officer: ask for the "
                    "release as a money request."
                ),
            )
        execute(
            cursor,
            "UPDATE ledger_deposit SET status = 'expired', resolved_at = %s "
            "WHERE inmate_id = %s AND status = 'created' RETURNING period_id, amount_fen",
            [now, inmate_id],
        )
        for period_id, amount_fen in cursor.fetchall():
            execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen - %s WHERE id = %s",
                [amount_fen, period_id],
            )
        payout_id = None
        if payout_fen:
            payout_id = post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.PAYOUT,
                legs=[
                    (locked.spendable_id, -locked.spendable_fen),
                    (locked.held_id, -locked.held_fen),
                    (locked.payouts_id, payout_fen),
                ],
                pending_delta_fen=-locked.pending_fen,
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=memos.PAYOUT_MEMO,
                created_by_id=staff_id,
                approved_by_id=approved_by_id,
                now=now,
            )
        execute(
            cursor,
            "UPDATE ledger_account SET is_closed = %s, pending_fen = 0 WHERE id IN (%s, %s)",
            [True, locked.spendable_id, locked.held_id],
        )
        return _record_event(
            AccountEvent.Kind.CLOSED,
            inmate_id=inmate_id,
            facility_id=locked.facility_id,
            transaction_id=payout_id,
            key=(scope, idempotency_key, request_hash),
            staff_id=staff_id,
            now=now,
        )


def change_facility_caps(*, facility_id: int, monthly_cap_fen: int, balance_cap_fen: int) -> None:
    """Change a facility's caps under every one of its inmates' account locks.

    Raising always works. A balance cap lowered below the facility's approval threshold
    brings the threshold down with it (stricter, so no policy change is needed). Lowering the
    balance cap is refused while any open inmate's
    spendable + held + pending deposits exceed it (invariant 3: the money is theirs; staff
    move or pay it out first), and the refusal names them. A lowered monthly cap applies
    from the next period on; a raised one also to the open periods.

    Order: the inmates' accounts in primary-key order, a chunk per statement; then the
    facility row ``FOR NO KEY UPDATE``; then any account transferred in while this waited
    (a transfer reads the caps under that row lock, so it either ran first and is locked
    here, or runs after and reads the new caps)."""
    for cap in (monthly_cap_fen, balance_cap_fen):
        if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
            raise errors.InvalidPolicy(_("Caps must be whole numbers of fen greater than zero."))
    with transaction.atomic(), connection.cursor() as cursor:
        lock_inmates_accounts(cursor, facility_id=facility_id, chunk=CAP_CHANGE_CHUNK)
        lock_facility_for_policy(cursor, facility_id=facility_id)
        # Again: rows already held are re-read at no wait, newcomers are locked.
        totals = lock_inmates_accounts(cursor, facility_id=facility_id, chunk=CAP_CHANGE_CHUNK)
        over = sorted(number for number, total in totals.values() if total > balance_cap_fen)
        if over:
            shown = ", ".join(over[:20])
            if len(over) > 20:
                shown += " " + _("and %(count)d more") % {"count": len(over) - 20}
            raise errors.InvalidPolicy(
                _(
                    "The balance cap cannot go below what these inmates already hold or are "
                    "being sent: %(inmates)s. Pay out or refund their money first."
                )
                % {"inmates": shown}
            )
        set_facility_caps(
            facility_id=facility_id,
            monthly_cap_fen=monthly_cap_fen,
            balance_cap_fen=balance_cap_fen,
        )
        execute(
            cursor,
            "UPDATE ledger_account SET balance_cap_fen = %s "
            "WHERE facility_id = %s AND kind = 'spendable' AND inmate_id IS NOT NULL",
            [balance_cap_fen, facility_id],
        )
        execute(
            cursor,
            "UPDATE ledger_monthlyperiod SET cap_fen = %s "
            "WHERE facility_id = %s AND closed_at IS NULL AND cap_fen < %s",
            [monthly_cap_fen, facility_id, monthly_cap_fen],
        )


def open_accounts_for_inmates(*, inmates) -> None:
    """``open_inmate_accounts`` for many newly admitted inmates of one facility at once (a
    roster import): their spendable and held accounts, empty, in one insert."""
    inmates = list(inmates)
    if not inmates:
        return
    facility = inmates[0].facility
    with transaction.atomic():
        Account.objects.bulk_create(
            [
                Account(
                    kind=kind,
                    facility_id=inmate.facility_id,
                    inmate=inmate,
                    currency=facility.currency,
                    balance_fen=0,
                    balance_cap_fen=facility.balance_cap_fen if kind == "spendable" else None,
                )
                for inmate in inmates
                for kind in Account.INMATE_KINDS
            ]
        )
