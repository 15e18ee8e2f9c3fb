"""Every write to the ledger. Guards invariants 1-4, 6 and 7 of docs/architecture.md.

Each money function takes keyword arguments only, runs in one short ``transaction.atomic()``,
takes its row locks through ``ledger.locks`` (the inmate's accounts first), decides from the
values read under the lock, and either commits the whole change or raises one DomainError
having changed nothing.

The hot paths (reserve, credit, purchase) are written as a handful of SQL statements through
``connection.cursor()``: an ORM call costs several times the round trip it makes, and these run
at hundreds a second at peak. The statements are plain enough for PostgreSQL and SQLite alike;
the CHECK constraints and triggers in ``ledger.models`` back every decision made here.

Idempotency: every operation carries a key, unique in the database per scope (who chose the
key: ``posting.kiosk_scope``, ``depositor_scope``, ``staff_scope``, or the server's own
``SYSTEM_SCOPE``). A replay fails the unique insert (or fails a check that the first request's
success now trips), rolls back, finds the first result by its key and returns it; a key reused
for a different request raises IdempotencyConflict.

The modules, by what they do to the world: ``posting`` (the shared posting and idempotency
step), ``deposits``, ``purchases``, ``staff``, ``lifecycle``, ``requests`` (maker-checker
requests from trust officers). Callers import this package.
"""

from .deposits import (
    DEPOSIT_RESERVATION_TTL,
    credit_deposit,
    detach_depositor,
    refund_held_deposit,
    release_deposit,
    reserve_deposit,
    settle_late_deposit,
)
from .lifecycle import (
    SYSTEM_ACCOUNT_KINDS,
    change_facility_caps,
    close_inmate_ledger,
    move_inmate_ledger,
    open_accounts_for_inmates,
    open_facility_accounts,
    open_inmate_accounts,
)
from .posting import (
    MAX_AMOUNT_FEN,
    MAX_CLIENT_KEY_LENGTH,
    SYSTEM_SCOPE,
    depositor_scope,
    is_well_formed_key,
    kiosk_scope,
    request_hash_of,
    staff_scope,
)
from .purchases import post_purchase, purchase_request_hash, refund_purchase
from .requests import (
    RequestPreview,
    approve_request,
    file_release_request_if_needed,
    preview_request,
    reject_request,
    request_key,
    request_money_action,
    request_policy_change,
    withdraw_request,
)
from .staff import (
    REVERSIBLE_KINDS,
    adjust_balance,
    hold_funds,
    needs_approval,
    release_hold,
    reverse_transaction,
    set_account_frozen,
)

__all__ = [
    "DEPOSIT_RESERVATION_TTL",
    "MAX_AMOUNT_FEN",
    "MAX_CLIENT_KEY_LENGTH",
    "REVERSIBLE_KINDS",
    "RequestPreview",
    "SYSTEM_ACCOUNT_KINDS",
    "SYSTEM_SCOPE",
    "adjust_balance",
    "approve_request",
    "change_facility_caps",
    "close_inmate_ledger",
    "credit_deposit",
    "refund_held_deposit",
    "detach_depositor",
    "depositor_scope",
    "file_release_request_if_needed",
    "hold_funds",
    "is_well_formed_key",
    "kiosk_scope",
    "move_inmate_ledger",
    "needs_approval",
    "open_accounts_for_inmates",
    "open_facility_accounts",
    "open_inmate_accounts",
    "post_purchase",
    "purchase_request_hash",
    "preview_request",
    "refund_purchase",
    "reject_request",
    "release_deposit",
    "release_hold",
    "request_hash_of",
    "request_key",
    "request_money_action",
    "request_policy_change",
    "reserve_deposit",
    "reverse_transaction",
    "set_account_frozen",
    "settle_late_deposit",
    "staff_scope",
    "withdraw_request",
]
