"""The one posting step and the one idempotency step that every money operation shares.

Guards invariant 1 (``post`` refuses legs that do not sum to zero before touching the
database; a deferred trigger refuses them again at commit) and invariant 6 (``run_idempotent``
turns a replay into the first result and a reused key into ``IdempotencyConflict``).

Idempotency keys are unique per *scope*: who chose the key. A kiosk device, a depositor and a
staff member each have their own namespace, and keys the server derives (``deposit-credit:…``,
``staff-request:…``, ``release:…``) live in the system scope, which no client can name. So no
client can take another's key or a server-derived one.
"""

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Sequence

from django.db import IntegrityError, connection
from django.utils.translation import gettext as _

from commissary import errors
from commissary.db import replan_when_doubled

from .. import sql as sql_params
from ..locks import LockedInmate
from ..models import Transaction

MAX_AMOUNT_FEN = 10**12  # ten billion yuan: anything larger is a typo or an attack
MAX_CLIENT_KEY_LENGTH = 128  # a client's key; server-derived keys are short and fit 200
SYSTEM_SCOPE = "system"

_SCOPE_PATTERN = re.compile(
    r"(system|kiosk:[1-9]\d{0,18}|depositor:[1-9]\d{0,18}|staff:[1-9]\d{0,18})"
)
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e][\x20-\x7e]*")

Leg = tuple[int, int]  # (account id, signed amount in fen)
# Analysed as the journal grows (commissary.db.replan_when_doubled): every money operation
# writes them, and the balance trigger and foreign-key checks read them at every commit.
JOURNAL_TABLES = ("ledger_transaction", "ledger_entry")


def kiosk_scope(device_id: int) -> str:
    return f"kiosk:{int(device_id)}"


def depositor_scope(user_id: int) -> str:
    return f"depositor:{int(user_id)}"


def staff_scope(user_id: int) -> str:
    return f"staff:{int(user_id)}"


def execute(cursor, sql: str, params) -> None:
    """Run one statement, adapting instants, dates and UUIDs the way the ORM would (SQLite
    has no native types for them; psycopg takes them as they are)."""
    if cursor.db.vendor == "postgresql":  # the hot path: nothing to adapt
        cursor.execute(sql, params)
        return
    cursor.execute(sql, sql_params.adapt_params(params))


# --- validation -------------------------------------------------------------------------


def checked_amount(amount_fen, *, allow_negative: bool = False) -> int:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise errors.InvalidAmount(
            _("The amount must be a whole number of fen, not %(amount)r.") % {"amount": amount_fen}
        )
    if amount_fen == 0 or (amount_fen < 0 and not allow_negative):
        raise errors.InvalidAmount()
    if abs(amount_fen) > MAX_AMOUNT_FEN:
        raise errors.InvalidAmount(_("The amount is too large."))
    return amount_fen


def checked_scope(scope, *, actor_id: int | None = None, actor_scope=None) -> str:
    """The scope a key lives in: the one given, else the acting person's own scope."""
    if scope is None and actor_id is not None:
        scope = actor_scope(actor_id)
    if not isinstance(scope, str) or not _SCOPE_PATTERN.fullmatch(scope):
        raise errors.ValidationFailed(_("Say whose idempotency key this is (its scope)."))
    return scope


def is_well_formed_key(idempotency_key, *, limit: int = MAX_CLIENT_KEY_LENGTH) -> bool:
    """The rule for every idempotency key, the ledger's and the catalogue's: 1 to ``limit``
    printable ASCII characters, not starting with a space."""
    return (
        isinstance(idempotency_key, str)
        and 1 <= len(idempotency_key) <= limit
        and _PRINTABLE_ASCII.fullmatch(idempotency_key) is not None
    )


def checked_key(idempotency_key, *, scope: str) -> str:
    """A client's key is 1-128 printable ASCII characters; the server's own keys (system
    scope) are built from ids and so always fit the column."""
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise errors.ValidationFailed(_("An idempotency key is required."))
    limit = 200 if scope == SYSTEM_SCOPE else MAX_CLIENT_KEY_LENGTH
    if not is_well_formed_key(idempotency_key, limit=limit):
        raise errors.ValidationFailed(
            _("An idempotency key is 1 to %(limit)d printable ASCII characters.") % {"limit": limit}
        )
    return idempotency_key


def checked_reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise errors.ValidationFailed(_("A reason is required."))
    return reason.strip()


def request_hash_of(operation: str, **fields) -> str:
    """The fingerprint stored beside an idempotency key: a replay must match it exactly."""
    canonical = json.dumps({"operation": operation, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ensure_open(locked: LockedInmate, *, spending: bool = False) -> None:
    if locked.is_closed:
        raise errors.InmateReleased()
    if spending and locked.is_frozen:
        raise errors.AccountFrozen()


# --- idempotency ------------------------------------------------------------------------


def run_idempotent(
    attempt: Callable[[], int], *, lookup: Callable[[], tuple | None], request_hash: str
) -> int:
    """Run ``attempt`` (which returns the id it created); on failure, if the key was already
    used, return the first request's id, or refuse a different request under the same key.

    The lookup runs only after ``attempt`` failed and rolled back: a replay racing its first
    request waits on the unique index, fails, and then finds the committed first result."""
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


def transaction_by_key(scope: str, idempotency_key: str) -> Callable[[], tuple | None]:
    return Transaction.lookup(scope, idempotency_key)


def run_posting(
    attempt: Callable[[], int], *, scope: str, idempotency_key: str, request_hash: str
) -> Transaction:
    """``run_idempotent`` for an operation that posts one journal transaction under
    (scope, key): the transaction it wrote, or the first request's on a replay."""
    transaction_id = run_idempotent(
        attempt, lookup=transaction_by_key(scope, idempotency_key), request_hash=request_hash
    )
    return transaction_of(transaction_id)


# --- posting ----------------------------------------------------------------------------


def post(cursor, **posting) -> int:
    """Write one balanced journal transaction (see ``post_transaction``); returns its id."""
    return _post(cursor, **posting)[0]


def post_transaction(cursor, **posting) -> Transaction:
    """Write one balanced journal transaction and return it as the ORM would read it back,
    built from exactly what was written: saves a read on the hot path."""
    transaction_id, fields = _post(cursor, **posting)
    return built(Transaction, {"id": transaction_id, **fields})


def _post(
    cursor,
    *,
    locked: LockedInmate,
    kind: str,
    legs: Sequence[Leg],
    idempotency_scope: str,
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
) -> tuple[int, dict]:
    """Write one balanced journal transaction for the locked inmate and move the cached
    balances of the inmate's accounts by the same legs: one statement on PostgreSQL, three on
    SQLite (no writes inside WITH). Returns its id and the transaction's other columns as
    written.

    Refuses legs that do not sum to zero before touching the database; the deferred trigger
    on ``ledger_entry`` refuses them again at commit. About a hundred lines: most of it builds
    the one PostgreSQL statement and its SQLite equivalent side by side, so they cannot drift.
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
    update = None
    if moved:
        case_balance = " ".join("WHEN %s THEN %s" for _ in moved)
        case_pending = " ".join("WHEN %s THEN %s" for _ in moved)
        update = (
            f"UPDATE ledger_account SET "  # noqa: S608 - placeholders only, values are bound
            f"balance_fen = balance_fen + CASE id {case_balance} ELSE 0 END, "
            f"pending_fen = pending_fen + CASE id {case_pending} ELSE 0 END "
            f"WHERE id IN ({', '.join(['%s'] * len(moved))})",
            [
                *[v for account_id, (b, _) in moved.items() for v in (account_id, b)],
                *[v for account_id, (_, p) in moved.items() for v in (account_id, p)],
                *moved,
            ],
        )
    fields = {
        "kind": kind,
        "idempotency_scope": idempotency_scope,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "facility_id": locked.facility_id,
        "inmate_id": locked.inmate_id,
        "deposit_id": deposit_id,
        "refund_of_id": refund_of_id,
        "reverses_id": reverses_id,
        "memo": memo,
        "created_by_id": created_by_id,
        "approved_by_id": approved_by_id,
        "created_at": now,
    }
    insert = (
        f"INSERT INTO ledger_transaction ({', '.join(fields)}) "  # noqa: S608 - constant names
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id, created_at",
        list(fields.values()),
    )
    if cursor.db.vendor == "postgresql":
        # One statement: the balances, the transaction and its entries (statements in WITH
        # all run; the entries take the transaction's id from its RETURNING).
        moves = f"moved AS ({update[0]}), " if update else ""
        cursor.execute(
            f"WITH {moves}posted AS ({insert[0]}) "  # noqa: S608 - statements built above; values are bound
            # Each entry carries its transaction's instant: the journal's partition key.
            "INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "
            "SELECT posted.id, leg.account_id, leg.amount_fen, posted.created_at "
            "FROM posted, (VALUES "
            + ", ".join(["(%s::bigint, %s::bigint)"] * len(legs))
            + ") AS leg (account_id, amount_fen) RETURNING transaction_id",
            [
                *(update[1] if update else []),
                *insert[1],
                *[v for leg in legs for v in leg],
            ],
        )
        transaction_id = cursor.fetchone()[0]
        replan_when_doubled(transaction_id, JOURNAL_TABLES)
        return transaction_id, fields
    if update:
        execute(cursor, *update)
    execute(cursor, *insert)
    transaction_id = cursor.fetchone()[0]
    execute(
        cursor,
        "INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) VALUES "  # noqa: S608 - placeholders only; values are bound
        + ", ".join(["(%s, %s, %s, %s)"] * len(legs)),
        [v for account_id, amount in legs for v in (transaction_id, account_id, amount, now)],
    )
    return transaction_id, fields


def transaction_of(transaction_id: int) -> Transaction:
    return Transaction.objects.get(pk=transaction_id)


# --- models from what was written -------------------------------------------------------


def built(model, fields: dict):
    """A model instance from the values just written (every column, by attribute name),
    marked as saved, as if read back. Built positionally, Django's fast path."""
    return model.from_db(
        connection.alias, None, [fields[field.attname] for field in model._meta.concrete_fields]
    )


_converters: dict = {}


def returning_columns(model) -> str:
    """Every column of ``model``, in field order, for a ``RETURNING`` clause whose row
    ``from_returned_row`` turns into an instance."""
    return ", ".join(field.column for field in model._meta.concrete_fields)


def _row_converters(model) -> list | None:
    """Per column, the converters the ORM applies to a fetched value, or None when no column
    needs one (PostgreSQL hands back instants and UUIDs as they are)."""
    key = (model, connection.vendor)
    if key not in _converters:
        table = model._meta.db_table
        converters = []
        for field in model._meta.concrete_fields:
            column = field.get_col(table)
            converters.append(
                (
                    column,
                    connection.ops.get_db_converters(column) + column.get_db_converters(connection),
                )
            )
        _converters[key] = converters if any(c for _, c in converters) else None
    return _converters[key]


def from_returned_row(model, row):
    """An instance of ``model`` from a row of ``returning_columns(model)``, converted as the
    ORM converts a row it fetches (SQLite hands back text for instants and UUIDs), so it is
    what an ORM read would return, without the read."""
    converters = _row_converters(model)
    if converters is not None:
        values = []
        for (column, column_converters), value in zip(converters, row, strict=True):
            for converter in column_converters:
                value = converter(value, column, connection)
            values.append(value)
        row = values
    return model.from_db(connection.alias, None, row)
