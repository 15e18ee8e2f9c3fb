"""Row locks for the ledger, in one place and one order.

The order, everywhere:
1. an inmate's spendable and held account rows (``lock_inmate_accounts``: one statement, both
   rows); several inmates in primary-key order (``lock_inmates_accounts``);
2. then the rows the operation writes (the inmate's period and deposits, journal rows, stock);
3. parent rows that ledger rows point at (inmate, facility) only after that, and only
   ``FOR NO KEY UPDATE`` (``lock_inmate_row``, ``lock_facility_for_policy``): every ledger
   insert takes ``FOR KEY SHARE`` on its parents, which ``FOR UPDATE`` would wait on, so a
   transfer, release or cap change that took the parent first deadlocked against deposits.

The services decide from values read under these locks. Money-moving writes to an inmate's
period and deposits happen under the account lock; the batch jobs (rollover closing periods,
expiry) take the same lock per inmate or touch only columns no money decision reads
(``closed_at``). System accounts (clearing, sales, fees…) are never locked: their balances are
derived from the journal, so deposits for different inmates never wait on each other.

The inmate's account rows are locked ``FOR NO KEY UPDATE``: a posting changes their balances,
never their keys, and the lock keeps every other posting of the inmate out just as well, but it
lets a row that points at the account be inserted meanwhile (its foreign-key check takes
``FOR KEY SHARE``), so a journal detach can store each account's archived totals without
holding up the postings (``ledger.archive``).

On SQLite there is no ``FOR UPDATE``; the embedded database opens every transaction
IMMEDIATE (see settings), which serialises writers instead.
"""

from dataclasses import dataclass

from django.db import connection

from commissary.errors import FacilityNotFound, InmateNotFound


@dataclass(frozen=True, slots=True)
class LockedInmate:
    """An inmate's money as read under the row lock, with the facility policy that applies."""

    inmate_id: int
    facility_id: int
    spendable_id: int
    held_id: int
    spendable_fen: int
    pending_fen: int
    held_fen: int
    balance_cap_fen: int
    is_frozen: bool
    is_closed: bool
    currency: str
    timezone: str
    monthly_cap_fen: int
    deposit_fee_fixed_fen: int
    deposit_fee_rate_bp: int
    approval_threshold_fen: int
    sales_id: int | None
    fees_id: int | None
    payouts_id: int | None
    adjustments_id: int | None
    clearing_id: int | None
    approval_window_hours: int

    @property
    def total_fen(self) -> int:
        """What counts against the balance cap: spendable + held + pending deposits."""
        return self.spendable_fen + self.held_fen + self.pending_fen

    @property
    def room_under_balance_cap_fen(self) -> int:
        return max(0, self.balance_cap_fen - self.total_fen)


def _system_account(kind: str, provider: str = "''") -> str:
    return (
        f"(SELECT x.id FROM ledger_account x WHERE x.facility_id = s.facility_id "  # noqa: S608 - kinds and provider expressions are this module's constants
        f"AND x.inmate_id IS NULL AND x.kind = '{kind}' AND x.provider = {provider})"
    )


_LOCK_SQL = f"""
SELECT s.inmate_id, s.facility_id, s.id, h.id, s.balance_fen, s.pending_fen, h.balance_fen,
       s.balance_cap_fen, s.is_frozen, s.is_closed,
       f.currency, f.timezone, f.monthly_cap_fen, f.deposit_fee_fixed_fen,
       f.deposit_fee_rate_bp, f.adjustment_approval_threshold_fen,
       {_system_account("sales")}, {_system_account("fees")}, {_system_account("payouts")},
       {_system_account("adjustments")}, {_system_account("clearing", "{provider}")},
       f.approval_window_hours
FROM ledger_account s
JOIN ledger_account h ON h.inmate_id = s.inmate_id AND h.kind = 'held'
JOIN facilities_facility f ON f.id = s.facility_id
WHERE s.inmate_id = {{inmate}} AND s.kind = 'spendable'
{{lock_clause}}
"""  # noqa: S608 - fragments are this module's constants; values are bound

_INMATE_BY = {
    # lock by the inmate's id, by one of its deposits, or by one of its transactions
    "inmate": "%(key)s",
    "deposit": "(SELECT d.inmate_id FROM ledger_deposit d WHERE d.id = %(key)s)",
    "transaction": "(SELECT t.inmate_id FROM ledger_transaction t WHERE t.id = %(key)s)",
}


_PROVIDER_BY = {
    # whose clearing account: the provider given, or (by a deposit) the deposit's own, so
    # crediting a deposit need not read it before the lock
    "inmate": "%(provider)s",
    "deposit": "(SELECT d.provider FROM ledger_deposit d WHERE d.id = %(key)s)",
    "transaction": "%(provider)s",
}


_lock_sql_cache: dict[tuple[str, bool], str] = {}


def lock_sql(by: str) -> str:
    """The lock query by inmate, deposit or transaction id (parameters ``key`` and
    ``provider``, which a lock by deposit ignores); public so the ledger benchmark sends
    exactly what the services send. Built once per kind of database: it is on every hot path."""
    can_lock = connection.features.has_select_for_update_of
    if (by, can_lock) not in _lock_sql_cache:
        _lock_sql_cache[by, can_lock] = _LOCK_SQL.format(
            inmate=_INMATE_BY[by],
            provider=_PROVIDER_BY[by],
            lock_clause="FOR NO KEY UPDATE OF s, h" if can_lock else "",
        )
    return _lock_sql_cache[by, can_lock]


def lock_inmate_accounts(cursor, *, by: str, key: int, provider: str = "") -> LockedInmate:
    """Lock the inmate's spendable and held rows and return them with the facility policy.

    ``by`` says what ``key`` is: an inmate id, a deposit id or a transaction id. Raises
    InmateNotFound when there is no such inmate with open ledger accounts (or no such deposit
    or transaction). Locked by a deposit, the clearing account is that of the deposit's
    provider.
    """
    sql = lock_sql(by)
    params = {"key": key, "provider": provider}
    cursor.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        # A concurrent transfer may have moved the row to another facility while this
        # statement waited for the lock; the recheck then drops it. A fresh statement sees it.
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise InmateNotFound()
    return LockedInmate(*row)


@dataclass(frozen=True, slots=True)
class FacilityPolicy:
    name: str
    currency: str
    monthly_cap_fen: int
    balance_cap_fen: int
    approval_threshold_fen: int


def _no_key_update() -> str:
    # FOR NO KEY UPDATE does not conflict with the FOR KEY SHARE that a foreign-key insert
    # takes, so deposits and purchases never wait on (or deadlock with) a facility's policy.
    return "FOR NO KEY UPDATE" if connection.vendor == "postgresql" else ""


def lock_facility_for_policy(cursor, *, facility_id: int) -> FacilityPolicy:
    """Lock a facility row for a change of its caps (or a read of them that must not race
    one), after the inmate accounts the operation needs."""
    cursor.execute(
        "SELECT name, currency, monthly_cap_fen, balance_cap_fen, "  # noqa: S608 - a constant lock clause; values are bound
        "adjustment_approval_threshold_fen FROM facilities_facility "
        f"WHERE id = %s {_no_key_update()}",
        [facility_id],
    )
    row = cursor.fetchone()
    if row is None:
        raise FacilityNotFound()
    return FacilityPolicy(*row)


def lock_inmate_row(cursor, *, inmate_id: int) -> None:
    """Lock the inmate row for an update of its own fields (status, facility, card), after
    its accounts: never ``FOR UPDATE``, which would wait on every ledger insert's key share."""
    cursor.execute(
        f"SELECT id FROM facilities_inmate WHERE id = %s {_no_key_update()}",  # noqa: S608
        [inmate_id],
    )


def lock_inmates_accounts(cursor, *, facility_id: int, chunk: int) -> dict[int, tuple[str, int]]:
    """Lock every open inmate account of a facility in inmate primary-key order, ``chunk``
    inmates a statement. Returns {inmate id: (inmate number, spendable + held + pending)}."""
    can_lock = connection.features.has_select_for_update_of
    lock_clause = "FOR NO KEY UPDATE OF s, h" if can_lock else ""
    totals: dict[int, tuple[str, int]] = {}
    after = 0
    while True:
        cursor.execute(
            "SELECT s.inmate_id, i.inmate_number, s.balance_fen + s.pending_fen + h.balance_fen "  # noqa: S608 - a constant lock clause; values are bound
            "FROM ledger_account s "
            "JOIN ledger_account h ON h.inmate_id = s.inmate_id AND h.kind = 'held' "
            "JOIN facilities_inmate i ON i.id = s.inmate_id "
            "WHERE s.facility_id = %s AND s.kind = 'spendable' AND NOT s.is_closed "
            f"AND s.inmate_id > %s ORDER BY s.inmate_id LIMIT %s {lock_clause}",
            [facility_id, after, chunk],
        )
        rows = cursor.fetchall()
        for inmate_id, number, total in rows:
            totals[inmate_id] = (number, int(total))
        if len(rows) < chunk:
            return totals
        after = rows[-1][0]
