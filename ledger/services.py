"""Every write to the ledger. Guards invariants 1-4 and 6 of docs/architecture.md.

Each money function takes keyword arguments only, runs in one short ``transaction.atomic()``,
takes its row locks through ``ledger.locks`` (the inmate's accounts first), decides from the
values read under the lock, and either commits the whole change or raises one DomainError
having changed nothing.

The hot paths (reserve, credit, purchase) are written as a handful of SQL statements through
``connection.cursor()``: an ORM call costs several times the round trip it makes, and these run
at hundreds a second at peak. The statements are plain enough for PostgreSQL and SQLite alike;
the CHECK constraints and triggers in ``ledger.models`` back every decision made here.

Idempotency: every operation carries a key that is unique in the database (on the deposit or
the journal transaction it creates). A replay fails the unique insert (or fails a check that
the first request's success now trips), rolls back, finds the first result by its key and
returns it; a key reused for a different request raises IdempotencyConflict.
"""

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Sequence

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from facilities.models import deposit_fee_fen, local_month

from . import errors
from .locks import LockedInmate, lock_inmate_accounts
from .models import Account, Deposit, Transaction

MAX_AMOUNT_FEN = 10**12  # ten billion yuan: anything larger is a typo or an attack
DEPOSIT_RESERVATION_TTL = dt.timedelta(minutes=30)
MAX_KEY_LENGTH = 200

Leg = tuple[int, int]  # (account id, signed amount in fen)


def _execute(cursor, sql: str, params) -> None:
    """Run one statement, adapting instants, dates and UUIDs the way the ORM would (SQLite
    has no native types for them; psycopg takes them as they are)."""
    ops = connection.ops
    adapted = []
    for value in params:
        if isinstance(value, dt.datetime):
            value = ops.adapt_datetimefield_value(value)
        elif isinstance(value, dt.date):
            value = ops.adapt_datefield_value(value)
        elif isinstance(value, uuid.UUID) and connection.vendor != "postgresql":
            value = value.hex
        adapted.append(value)
    cursor.execute(sql, adapted)


# --- validation -------------------------------------------------------------------------


def _checked_amount(amount_fen, *, allow_negative: bool = False) -> int:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise errors.InvalidAmount(f"The amount must be a whole number of fen, not {amount_fen!r}.")
    if amount_fen == 0 or (amount_fen < 0 and not allow_negative):
        raise errors.InvalidAmount()
    if abs(amount_fen) > MAX_AMOUNT_FEN:
        raise errors.InvalidAmount("The amount is too large.")
    return amount_fen


def _checked_key(idempotency_key) -> str:
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise errors.ValidationFailed("An idempotency key is required.")
    if len(idempotency_key) > MAX_KEY_LENGTH:
        raise errors.ValidationFailed(f"Idempotency keys are at most {MAX_KEY_LENGTH} characters.")
    return idempotency_key


def _checked_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise errors.ValidationFailed("A reason is required.")
    return reason.strip()


def request_hash_of(operation: str, **fields) -> str:
    """The fingerprint stored beside an idempotency key: a replay must match it exactly."""
    canonical = json.dumps({"operation": operation, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _ensure_open(locked: LockedInmate, *, spending: bool = False) -> None:
    if locked.is_closed:
        raise errors.InmateReleased()
    if spending and locked.is_frozen:
        raise errors.AccountFrozen()


# --- idempotency ------------------------------------------------------------------------


def _run_idempotent(
    attempt: Callable[[], int], *, lookup: Callable[[], tuple | None], request_hash: str
) -> int:
    """Run ``attempt`` (which returns the id it created); on failure, if the key was already
    used, return the first request's id, or refuse a different request under the same key."""
    try:
        return attempt()
    except (errors.DomainError, IntegrityError) as failure:
        earlier = lookup()
        if earlier is None:
            raise
        earlier_id, earlier_hash = earlier
        if earlier_hash != request_hash:
            raise errors.IdempotencyConflict() from failure
        return earlier_id


def _transaction_by_key(idempotency_key: str) -> Callable[[], tuple | None]:
    return lambda: (
        Transaction.objects.filter(idempotency_key=idempotency_key)
        .values_list("id", "request_hash")
        .first()
    )


# --- posting ----------------------------------------------------------------------------


def _post(
    cursor,
    *,
    locked: LockedInmate,
    kind: str,
    legs: Sequence[Leg],
    idempotency_key: str,
    request_hash: str,
    now: dt.datetime,
    memo: str = "",
    pending_delta_fen: int = 0,
    deposit_id: int | None = None,
    refund_of_id: int | None = None,
    reverses_id: int | None = None,
    created_by_id: int | None = None,
    approved_by_id: int | None = None,
) -> int:
    """Write one balanced journal transaction for the locked inmate and move the cached
    balances of the inmate's accounts by the same legs, in three statements. Returns its id.

    Refuses legs that do not sum to zero before touching the database; the deferred trigger
    on ``ledger_entry`` refuses them again at commit.
    """
    legs = [(account_id, amount) for account_id, amount in legs if amount != 0]
    if not legs or sum(amount for _, amount in legs) != 0:
        raise ValueError(f"unbalanced or empty transaction legs: {legs!r}")
    cached = {locked.spendable_id: [0, 0], locked.held_id: [0, 0]}
    for account_id, amount in legs:
        if account_id in cached:
            cached[account_id][0] += amount
        elif account_id is None:
            raise ValueError(f"a {kind} leg names a system account this facility lacks")
    cached[locked.spendable_id][1] += pending_delta_fen
    moved = {account_id: delta for account_id, delta in cached.items() if delta != [0, 0]}
    if moved:
        case_balance = " ".join("WHEN %s THEN %s" for _ in moved)
        case_pending = " ".join("WHEN %s THEN %s" for _ in moved)
        _execute(
            cursor,
            f"UPDATE ledger_account SET "
            f"balance_fen = balance_fen + CASE id {case_balance} ELSE 0 END, "
            f"pending_fen = pending_fen + CASE id {case_pending} ELSE 0 END "
            f"WHERE id IN ({', '.join(['%s'] * len(moved))})",
            [
                *[v for account_id, (b, _) in moved.items() for v in (account_id, b)],
                *[v for account_id, (_, p) in moved.items() for v in (account_id, p)],
                *moved,
            ],
        )
    _execute(
        cursor,
        "INSERT INTO ledger_transaction (kind, idempotency_key, request_hash, facility_id, "
        "inmate_id, deposit_id, refund_of_id, reverses_id, memo, created_by_id, approved_by_id, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        [
            kind,
            idempotency_key,
            request_hash,
            locked.facility_id,
            locked.inmate_id,
            deposit_id,
            refund_of_id,
            reverses_id,
            memo,
            created_by_id,
            approved_by_id,
            now,
        ],
    )
    transaction_id = cursor.fetchone()[0]
    _execute(
        cursor,
        "INSERT INTO ledger_entry (transaction_id, account_id, amount_fen) VALUES "
        + ", ".join(["(%s, %s, %s)"] * len(legs)),
        [v for account_id, amount in legs for v in (transaction_id, account_id, amount)],
    )
    return transaction_id


def _transaction(transaction_id: int) -> Transaction:
    return Transaction.objects.get(pk=transaction_id)


# --- deposits ---------------------------------------------------------------------------


def reserve_deposit(
    *,
    inmate_id: int,
    amount_fen: int,
    idempotency_key: str,
    provider: str = "sandbox",
    depositor_id: int | None = None,
    now: dt.datetime | None = None,
) -> Deposit:
    """Create a deposit awaiting payment and reserve its room under both caps.

    Invariants 3 and 4: the reservation counts as pending incoming money against the balance
    cap and as reserved money in the facility-local month's period, so two deposits in flight
    can never together break a cap.
    """
    amount_fen = _checked_amount(amount_fen)
    idempotency_key = _checked_key(idempotency_key)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "reserve_deposit",
        inmate_id=inmate_id,
        amount_fen=amount_fen,
        provider=provider,
        depositor_id=depositor_id,
    )
    created: dict = {}

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id, provider=provider)
            _ensure_open(locked, spending=True)
            if locked.clearing_id is None:
                raise errors.ValidationFailed(f"Unknown payment provider {provider!r}.")
            if amount_fen > locked.room_under_balance_cap_fen:
                raise errors.BalanceCapExceeded(
                    f"The inmate can receive at most {locked.room_under_balance_cap_fen} fen "
                    f"before reaching the balance cap."
                )
            month = local_month(now, locked.timezone)
            _execute(
                cursor,
                "INSERT INTO ledger_monthlyperiod (inmate_id, facility_id, month, received_fen, "
                "reserved_fen, cap_fen) VALUES (%s, %s, %s, 0, 0, %s) "
                "ON CONFLICT (inmate_id, month) DO NOTHING",
                [locked.inmate_id, locked.facility_id, month, locked.monthly_cap_fen],
            )
            # The cap check and the reservation are one conditional UPDATE.
            _execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen + %s "
                "WHERE inmate_id = %s AND month = %s "
                "AND received_fen + reserved_fen + %s <= cap_fen RETURNING id",
                [amount_fen, locked.inmate_id, month, amount_fen],
            )
            period = cursor.fetchone()
            if period is None:
                raise errors.MonthlyCapExceeded()
            _execute(
                cursor,
                "UPDATE ledger_account SET pending_fen = pending_fen + %s WHERE id = %s",
                [amount_fen, locked.spendable_id],
            )
            created.update(
                reference=uuid.uuid4(),
                inmate_id=locked.inmate_id,
                facility_id=locked.facility_id,
                period_id=period[0],
                depositor_id=depositor_id,
                amount_fen=amount_fen,
                fee_fen=deposit_fee_fen(
                    amount_fen,
                    fixed_fen=locked.deposit_fee_fixed_fen,
                    rate_bp=locked.deposit_fee_rate_bp,
                ),
                currency=locked.currency,
                provider=provider,
                provider_reference="",
                status=Deposit.Status.CREATED,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                created_at=now,
                expires_at=now + DEPOSIT_RESERVATION_TTL,
                resolved_at=None,
            )
            columns = list(created)
            _execute(
                cursor,
                f"INSERT INTO ledger_deposit ({', '.join(columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id",
                [created[column] for column in columns],
            )
            created["id"] = cursor.fetchone()[0]
            return created["id"]

    deposit_id = _run_idempotent(
        attempt,
        lookup=lambda: (
            Deposit.objects.filter(idempotency_key=idempotency_key)
            .values_list("id", "request_hash")
            .first()
        ),
        request_hash=request_hash,
    )
    if created.get("id") != deposit_id:  # a replay: the first request's deposit
        return Deposit.objects.get(pk=deposit_id)
    # The fresh deposit, built from exactly what was written: saves a read on the hot path.
    deposit = Deposit(**created)
    deposit._state.adding = False
    deposit._state.db = connection.alias
    return deposit


def credit_deposit(
    *, deposit_id: int, provider_reference: str = "", now: dt.datetime | None = None
) -> Deposit:
    """Credit a paid deposit: clearing -> inmate spendable, fee -> fees (the fee is paid on
    top by the depositor and never counts against a cap). The reservation turns into money
    received. Idempotent: crediting a credited deposit returns it unchanged."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            deposit = Deposit.objects.values("provider").get(pk=deposit_id)
        except Deposit.DoesNotExist:
            raise errors.DepositNotFound() from None
        locked = lock_inmate_accounts(
            cursor, by="deposit", key=deposit_id, provider=deposit["provider"]
        )
        _execute(
            cursor,
            "UPDATE ledger_deposit SET status = 'credited', resolved_at = %s, "
            "provider_reference = CASE WHEN %s = '' THEN provider_reference ELSE %s END "
            "WHERE id = %s AND status = 'created' "
            "RETURNING amount_fen, fee_fen, period_id, idempotency_key",
            [now, provider_reference, provider_reference, deposit_id],
        )
        row = cursor.fetchone()
        if row is not None:
            amount_fen, fee_fen, period_id, deposit_key = row
            _execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen - %s, "
                "received_fen = received_fen + %s WHERE id = %s",
                [amount_fen, amount_fen, period_id],
            )
            _post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.DEPOSIT,
                legs=[
                    (locked.clearing_id, -(amount_fen + fee_fen)),
                    (locked.spendable_id, amount_fen),
                    (locked.fees_id, fee_fen),
                ],
                pending_delta_fen=-amount_fen,
                idempotency_key=f"deposit-credit:{deposit_key}",
                request_hash=request_hash_of("credit_deposit", deposit_id=deposit_id),
                deposit_id=deposit_id,
                now=now,
            )
    credited = Deposit.objects.get(pk=deposit_id)
    if credited.status != Deposit.Status.CREDITED:
        raise errors.DepositNotPending(f"The deposit is {credited.get_status_display().lower()}.")
    return credited


def release_deposit(
    *, deposit_id: int, status: str = Deposit.Status.FAILED, now: dt.datetime | None = None
) -> Deposit:
    """Mark an unpaid deposit failed or expired and give its room under both caps back.
    Idempotent for the same outcome."""
    if status not in (Deposit.Status.FAILED, Deposit.Status.EXPIRED):
        raise errors.ValidationFailed("A deposit is released as failed or expired.")
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if not Deposit.objects.filter(pk=deposit_id).exists():
            raise errors.DepositNotFound()
        locked = lock_inmate_accounts(cursor, by="deposit", key=deposit_id)
        _execute(
            cursor,
            "UPDATE ledger_deposit SET status = %s, resolved_at = %s "
            "WHERE id = %s AND status = 'created' RETURNING amount_fen, period_id",
            [status, now, deposit_id],
        )
        row = cursor.fetchone()
        if row is not None:
            amount_fen, period_id = row
            _execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen - %s WHERE id = %s",
                [amount_fen, period_id],
            )
            _execute(
                cursor,
                "UPDATE ledger_account SET pending_fen = pending_fen - %s WHERE id = %s",
                [amount_fen, locked.spendable_id],
            )
    released = Deposit.objects.get(pk=deposit_id)
    if released.status != status:
        raise errors.DepositNotPending(f"The deposit is {released.get_status_display().lower()}.")
    return released


# --- purchases and refunds --------------------------------------------------------------


def debit_purchase(
    *,
    inmate_id: int,
    amount_fen: int,
    idempotency_key: str,
    memo: str = "",
    now: dt.datetime | None = None,
) -> Transaction:
    """Take a purchase out of the inmate's spendable money into commissary sales.
    The only way a kiosk moves money (invariant 7): a debit, at a price the caller computed
    on the server."""
    amount_fen = _checked_amount(amount_fen)
    idempotency_key = _checked_key(idempotency_key)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "debit_purchase", inmate_id=inmate_id, amount_fen=amount_fen, memo=memo
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
            _ensure_open(locked, spending=True)
            if locked.spendable_fen < amount_fen:
                raise errors.InsufficientFunds()
            return _post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.PURCHASE,
                legs=[(locked.spendable_id, -amount_fen), (locked.sales_id, amount_fen)],
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=memo,
                now=now,
            )

    transaction_id = _run_idempotent(
        attempt, lookup=_transaction_by_key(idempotency_key), request_hash=request_hash
    )
    return _transaction(transaction_id)


def refund_purchase(
    *,
    purchase_id: int,
    amount_fen: int,
    idempotency_key: str,
    reason: str = "",
    staff_id: int | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """Give back (part of) a purchase. The inmate's own money is always restored: whatever
    would take spendable + held + pending over the balance cap goes to held money (not
    spendable; paid out on release), so spendable + pending never exceeds the cap."""
    amount_fen = _checked_amount(amount_fen)
    idempotency_key = _checked_key(idempotency_key)
    now = now or timezone.now()
    request_hash = request_hash_of(
        "refund_purchase", purchase_id=purchase_id, amount_fen=amount_fen, reason=reason
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            purchase = Transaction.objects.filter(
                pk=purchase_id, kind=Transaction.Kind.PURCHASE
            ).first()
            if purchase is None:
                raise errors.TransactionNotFound("No such purchase.")
            locked = lock_inmate_accounts(cursor, by="transaction", key=purchase_id)
            _ensure_open(locked)
            _execute(
                cursor,
                "SELECT "
                "(SELECT -SUM(amount_fen) FROM ledger_entry "
                " WHERE transaction_id = %s AND account_id = %s), "
                "(SELECT COALESCE(SUM(e.amount_fen), 0) FROM ledger_entry e "
                " JOIN ledger_transaction t ON t.id = e.transaction_id "
                " WHERE t.refund_of_id = %s AND e.account_id IN (%s, %s))",
                [
                    purchase_id,
                    locked.spendable_id,
                    purchase_id,
                    locked.spendable_id,
                    locked.held_id,
                ],
            )
            purchased_fen, refunded_fen = map(int, cursor.fetchone())
            if amount_fen > purchased_fen - refunded_fen:
                raise errors.RefundExceedsPurchase()
            to_spendable = min(amount_fen, locked.room_under_balance_cap_fen)
            return _post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.REFUND,
                legs=[
                    (locked.sales_id, -amount_fen),
                    (locked.spendable_id, to_spendable),
                    (locked.held_id, amount_fen - to_spendable),
                ],
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                refund_of_id=purchase_id,
                created_by_id=staff_id,
                now=now,
            )

    transaction_id = _run_idempotent(
        attempt, lookup=_transaction_by_key(idempotency_key), request_hash=request_hash
    )
    return _transaction(transaction_id)


# --- staff operations -------------------------------------------------------------------


def _ensure_approved(
    locked: LockedInmate, *, amount_fen: int, staff_id: int, approved_by_id: int | None
) -> None:
    if abs(amount_fen) > locked.approval_threshold_fen and (
        approved_by_id is None or approved_by_id == staff_id
    ):
        raise errors.ApprovalRequired(
            f"Adjustments over {locked.approval_threshold_fen} fen need a second staff "
            f"member's approval."
        )


def adjust_balance(
    *,
    inmate_id: int,
    amount_fen: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    approved_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """A staff correction of the inmate's spendable money (positive credits, negative
    debits), against the adjustments account. Credits are new money: they obey the balance
    cap. Above the facility's threshold a second staff member must approve."""
    amount_fen = _checked_amount(amount_fen, allow_negative=True)
    reason = _checked_reason(reason)
    idempotency_key = _checked_key(idempotency_key)
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
            _ensure_open(locked)
            _ensure_approved(
                locked, amount_fen=amount_fen, staff_id=staff_id, approved_by_id=approved_by_id
            )
            if amount_fen > locked.room_under_balance_cap_fen:
                raise errors.BalanceCapExceeded()
            if -amount_fen > locked.spendable_fen:
                raise errors.InsufficientFunds()
            return _post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.ADJUSTMENT,
                legs=[(locked.adjustments_id, -amount_fen), (locked.spendable_id, amount_fen)],
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                created_by_id=staff_id,
                approved_by_id=approved_by_id,
                now=now,
            )

    transaction_id = _run_idempotent(
        attempt, lookup=_transaction_by_key(idempotency_key), request_hash=request_hash
    )
    return _transaction(transaction_id)


def _move_between_own_accounts(
    *,
    inmate_id: int,
    amount_fen: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
    to_held: bool,
    now: dt.datetime | None,
) -> Transaction:
    amount_fen = _checked_amount(amount_fen)
    reason = _checked_reason(reason)
    idempotency_key = _checked_key(idempotency_key)
    now = now or timezone.now()
    operation = "hold_funds" if to_held else "release_hold"
    request_hash = request_hash_of(
        operation, inmate_id=inmate_id, amount_fen=amount_fen, reason=reason, staff_id=staff_id
    )

    def attempt() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
            _ensure_open(locked)
            if to_held:
                if locked.spendable_fen < amount_fen:
                    raise errors.InsufficientFunds()
                legs = [(locked.spendable_id, -amount_fen), (locked.held_id, amount_fen)]
            else:
                if locked.held_fen < amount_fen:
                    raise errors.InsufficientFunds("Less than that is held.")
                if locked.spendable_fen + locked.pending_fen + amount_fen > locked.balance_cap_fen:
                    raise errors.BalanceCapExceeded(
                        "Releasing this much would take spendable money over the balance cap."
                    )
                legs = [(locked.held_id, -amount_fen), (locked.spendable_id, amount_fen)]
            kind = Transaction.Kind.HOLD if to_held else Transaction.Kind.HOLD_RELEASE
            return _post(
                cursor,
                locked=locked,
                kind=kind,
                legs=legs,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                created_by_id=staff_id,
                now=now,
            )

    transaction_id = _run_idempotent(
        attempt, lookup=_transaction_by_key(idempotency_key), request_hash=request_hash
    )
    return _transaction(transaction_id)


def hold_funds(
    *,
    inmate_id: int,
    amount_fen: int,
    reason: str,
    staff_id: int,
    idempotency_key: str,
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
    now: dt.datetime | None = None,
) -> Transaction:
    """Move held money back to spendable, as far as spendable + pending stays under the cap."""
    return _move_between_own_accounts(
        inmate_id=inmate_id,
        amount_fen=amount_fen,
        reason=reason,
        staff_id=staff_id,
        idempotency_key=idempotency_key,
        to_held=False,
        now=now,
    )


def set_account_frozen(*, inmate_id: int, is_frozen: bool) -> None:
    """Freeze or unfreeze the inmate's account: a frozen account can neither spend nor take
    new deposits; credits of deposits already paid and refunds still go through."""
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        _ensure_open(locked)
        _execute(
            cursor,
            "UPDATE ledger_account SET is_frozen = %s WHERE id = %s",
            [is_frozen, locked.spendable_id],
        )


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
    approved_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> Transaction:
    """Post the mirror image of a staff transaction (the journal is append-only, so this is
    how a mistake is corrected). Deposits are refunded through their provider and purchases
    through ``refund_purchase`` instead, so that periods and sales stay right."""
    reason = _checked_reason(reason)
    idempotency_key = _checked_key(idempotency_key)
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
            _ensure_open(locked)
            if Transaction.objects.filter(reverses_id=transaction_id).exists():
                raise errors.NotReversible("This transaction has already been reversed.")
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
                amount_fen=new_money or max(abs(a) for _, a in legs),
                staff_id=staff_id,
                approved_by_id=approved_by_id,
            )
            if new_money > locked.room_under_balance_cap_fen or (
                new_spendable + locked.pending_fen > locked.balance_cap_fen
            ):
                raise errors.BalanceCapExceeded()
            return _post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.REVERSAL,
                legs=legs,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                memo=reason,
                reverses_id=transaction_id,
                created_by_id=staff_id,
                approved_by_id=approved_by_id,
                now=now,
            )

    reversal_id = _run_idempotent(
        attempt, lookup=_transaction_by_key(idempotency_key), request_hash=request_hash
    )
    return _transaction(reversal_id)


# --- accounts over an inmate's stay -----------------------------------------------------


SYSTEM_ACCOUNT_KINDS = (
    Account.Kind.SALES,
    Account.Kind.FEES,
    Account.Kind.PAYOUTS,
    Account.Kind.ADJUSTMENTS,
)


def open_facility_accounts(*, facility, providers: Sequence[str] = ("sandbox",)) -> None:
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
    with transaction.atomic():
        Account.objects.bulk_create(
            [
                Account(
                    kind=kind,
                    facility_id=inmate.facility_id,
                    inmate=inmate,
                    currency=inmate.facility.currency,
                    balance_fen=0,
                    balance_cap_fen=inmate.facility.balance_cap_fen
                    if kind == "spendable"
                    else None,
                )
                for kind in Account.INMATE_KINDS
            ]
        )


def move_inmate_ledger(
    *,
    inmate_id: int,
    to_facility,
    staff_id: int | None,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> None:
    """Point the inmate's one ledger at a new facility and its caps. Spendable money over the
    new balance cap is moved to held money (it stays the inmate's); the open period keeps what
    was received, under the larger of the two monthly caps for the rest of the month."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        _ensure_open(locked)
        if locked.pending_fen:
            raise errors.ValidationFailed(
                "Deposits are awaiting payment for this inmate; transfer once they have "
                "settled or expired."
            )
        if to_facility.currency != locked.currency:
            raise errors.ValidationFailed("The facilities keep money in different currencies.")
        excess_fen = max(0, locked.spendable_fen - to_facility.balance_cap_fen)
        if excess_fen:
            _post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.TRANSFER_EXCESS,
                legs=[(locked.spendable_id, -excess_fen), (locked.held_id, excess_fen)],
                idempotency_key=idempotency_key,
                request_hash=request_hash_of(
                    "move_inmate_ledger", inmate_id=inmate_id, to_facility=to_facility.pk
                ),
                memo=f"Over the balance cap of {to_facility.name}",
                created_by_id=staff_id,
                now=now,
            )
        _execute(
            cursor,
            "UPDATE ledger_account SET facility_id = %s, "
            "balance_cap_fen = CASE WHEN kind = 'spendable' THEN %s ELSE NULL END "
            "WHERE id IN (%s, %s)",
            [to_facility.pk, to_facility.balance_cap_fen, locked.spendable_id, locked.held_id],
        )
        _execute(
            cursor,
            "UPDATE ledger_monthlyperiod SET cap_fen = CASE WHEN cap_fen > %s THEN cap_fen "
            "ELSE %s END WHERE inmate_id = %s AND closed_at IS NULL",
            [to_facility.monthly_cap_fen, to_facility.monthly_cap_fen, inmate_id],
        )


def close_inmate_ledger(
    *,
    inmate_id: int,
    staff_id: int | None,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> Transaction | None:
    """On release: expire deposits still awaiting payment (their room is given back), pay
    out spendable and held money, and close the accounts. Returns the payout transaction, or
    None when there was nothing to pay out."""
    idempotency_key = _checked_key(idempotency_key)
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        _ensure_open(locked)
        _execute(
            cursor,
            "UPDATE ledger_deposit SET status = 'expired', resolved_at = %s "
            "WHERE inmate_id = %s AND status = 'created' RETURNING period_id, amount_fen",
            [now, inmate_id],
        )
        for period_id, amount_fen in cursor.fetchall():
            _execute(
                cursor,
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen - %s WHERE id = %s",
                [amount_fen, period_id],
            )
        payout_id = None
        payout_fen = locked.spendable_fen + locked.held_fen
        if payout_fen:
            payout_id = _post(
                cursor,
                locked=locked,
                kind=Transaction.Kind.PAYOUT,
                legs=[
                    (locked.spendable_id, -locked.spendable_fen),
                    (locked.held_id, -locked.held_fen),
                    (locked.payouts_id, payout_fen),
                ],
                pending_delta_fen=-locked.pending_fen,
                idempotency_key=idempotency_key,
                request_hash=request_hash_of("close_inmate_ledger", inmate_id=inmate_id),
                memo="Paid out on release",
                created_by_id=staff_id,
                now=now,
            )
        _execute(
            cursor,
            "UPDATE ledger_account SET is_closed = %s, pending_fen = 0 WHERE id IN (%s, %s)",
            [True, locked.spendable_id, locked.held_id],
        )
    return _transaction(payout_id) if payout_id else None
