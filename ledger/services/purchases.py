"""Purchases and their refunds. A kiosk can only ever debit (invariant 7); a refund gives back
the inmate's own money, into held money where spendable money would break the balance cap
(invariant 3)."""

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commissary import errors

from ..locks import LockedInmate, lock_inmate_accounts
from ..models import Transaction
from .posting import (
    checked_amount,
    checked_key,
    checked_scope,
    ensure_open,
    execute,
    post,
    post_transaction,
    request_hash_of,
    run_posting,
    staff_scope,
)


def purchase_request_hash(*, inmate_id: int, amount_fen: int, memo: str) -> str:
    """The request hash a purchase's transaction is written with, shared by ``place_order``'s
    debit and the bulk loader, so a loaded purchase is the row the services write, hash
    included. The recipe keeps the name it was first hashed under: the journal's rows already
    carry hashes made with it."""
    return request_hash_of("debit_purchase", inmate_id=inmate_id, amount_fen=amount_fen, memo=memo)


def post_purchase(
    cursor,
    *,
    locked: LockedInmate,
    amount_fen: int,
    idempotency_scope: str,
    idempotency_key: str,
    request_hash: str,
    memo: str,
    now: dt.datetime,
) -> Transaction:
    """The purchase's debit for a caller that holds the inmate's account lock (``locked``, read
    under it in this transaction) and checked the amount, scope and key: refused on a closed
    or frozen account and on too little spendable money, else posted. Returns the transaction,
    built from what was written. The kiosk's purchase, ``catalog.services.place_order``, posts
    its debit here inside its own transaction, so an order takes the lock once; its unique key
    makes a replay fail and roll the whole transaction back, and the order answers the replay.
    This is the only purchase the ledger has: it takes no lock and answers no replay itself."""
    checked_amount(amount_fen)
    ensure_open(locked, spending=True)
    if locked.spendable_fen < amount_fen:
        raise errors.InsufficientFunds()
    return post_transaction(
        cursor,
        locked=locked,
        kind=Transaction.Kind.PURCHASE,
        legs=[(locked.spendable_id, -amount_fen), (locked.sales_id, amount_fen)],
        idempotency_scope=idempotency_scope,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        memo=memo,
        now=now,
    )


def refund_purchase(
    *,
    purchase_id: int,
    amount_fen: int,
    idempotency_key: str,
    reason: str = "",
    staff_id: int | None = None,
    idempotency_scope: str | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """Give back (part of) a purchase. The inmate's own money is always restored: whatever
    would take spendable + held + pending over the balance cap goes to held money (not
    spendable; paid out on release), so spendable + pending never exceeds the cap."""
    amount_fen = checked_amount(amount_fen)
    scope = checked_scope(idempotency_scope, actor_id=staff_id, actor_scope=staff_scope)
    idempotency_key = checked_key(idempotency_key, scope=scope)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "refund_purchase",
        purchase_id=purchase_id,
        amount_fen=amount_fen,
        reason=reason,
        staff_id=staff_id,
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            purchase = Transaction.objects.filter(
                pk=purchase_id, kind=Transaction.Kind.PURCHASE
            ).first()
            if purchase is None:
                raise errors.TransactionNotFound(_("No such purchase."))
            locked = lock_inmate_accounts(cursor, by="transaction", key=purchase_id)
            ensure_open(locked)
            execute(
                cursor,
                "SELECT "
                # A purchase of a month detached for archive has no entries here: nothing of
                # it can be refunded.
                "(SELECT COALESCE(-SUM(amount_fen), 0) FROM ledger_entry "
                " WHERE transaction_id = %s AND account_id = %s AND created_at = %s), "
                "(SELECT COALESCE(SUM(e.amount_fen), 0) FROM ledger_entry e "
                " JOIN ledger_transaction t ON t.id = e.transaction_id "
                " WHERE t.refund_of_id = %s AND e.account_id IN (%s, %s))",
                [
                    purchase_id,
                    locked.spendable_id,
                    purchase.created_at,
                    purchase_id,
                    locked.spendable_id,
                    locked.held_id,
                ],
            )
            purchased_fen, refunded_fen = map(int, cursor.fetchone())
            if amount_fen > purchased_fen - refunded_fen:
                raise errors.RefundExceedsPurchase()
            to_spendable = min(amount_fen, locked.room_under_balance_cap_fen)
            return post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.REFUND,
                legs=[
                    (locked.sales_id, -amount_fen),
                    (locked.spendable_id, to_spendable),
                    (locked.held_id, amount_fen - to_spendable),
                ],
                idempotency_scope=scope,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                refund_of_id=purchase_id,
                created_by_id=staff_id,
                now=now,
            )

    return run_posting(
        attempt, scope=scope, idempotency_key=idempotency_key, request_hash=request_hash
    )
