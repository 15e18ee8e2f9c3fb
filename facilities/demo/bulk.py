"""Writing the demo's inmates and their money in bulk: the rows the services would write,
computed from the plan and inserted with COPY (``executemany`` on SQLite), a batch of inmates
per transaction. Guards the invariants by construction (see the package docstring)."""

import datetime as dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, models

from ledger import sql
from ledger.models import Account, Deposit, Entry, MonthlyPeriod, Transaction
from ledger.services import DEPOSIT_RESERVATION_TTL, SYSTEM_SCOPE

# The services' own request hash, so that replaying a seeded key through the real service is
# recognised as the same request (invariant 6).
from ledger.services import request_hash_of as request_hash

from ..models import Facility, Inmate
from .plan import (
    PROVIDER,
    InmatePlan,
    inmate_number,
    pin_slot,
)

# --- writing rows in bulk ------------------------------------------------------------------


class _BulkRows:
    """Draws ids from a table's own sequence and inserts rows fast: COPY on PostgreSQL,
    ``executemany`` on SQLite. Only for use inside ``transaction.atomic()``."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.is_postgresql = connection.vendor == "postgresql"

    def reserve_ids(self, model: type[models.Model], count: int) -> Sequence[int]:
        if count == 0:
            return []
        table = model._meta.db_table
        if self.is_postgresql:
            self.cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), count],
            )
            return [row[0] for row in self.cursor.fetchall()]
        # SQLite: the transaction is IMMEDIATE (see settings), so no other writer can take
        # ids until it commits; inserting them moves the AUTOINCREMENT sequence past them.
        self.cursor.execute(
            f"SELECT MAX(n) FROM (SELECT seq AS n FROM sqlite_sequence WHERE name = %s "  # noqa: S608 - a model's table name, quoted; values are bound
            f"UNION ALL SELECT MAX(id) FROM {connection.ops.quote_name(table)})",
            [table],
        )
        first = (self.cursor.fetchone()[0] or 0) + 1
        return range(first, first + count)

    def insert(self, model: type[models.Model], rows: Sequence[dict]) -> None:
        """Insert rows given as {column: value} dicts, all with the same columns."""
        if not rows:
            return
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        column_list = ", ".join(quote(column) for column in rows[0])
        if self.is_postgresql:
            with self.cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
            return
        self.cursor.executemany(
            f"INSERT INTO {table} ({column_list}) VALUES ({', '.join(['%s'] * len(rows[0]))})",  # noqa: S608 - model table and column names, quoted; values are bound
            [tuple(sql.adapt(value) for value in row.values()) for row in rows],
        )


@dataclass(frozen=True)
class _SystemAccounts:
    clearing_id: int
    fees_id: int
    sales_id: int

    @classmethod
    def of(cls, facility: Facility) -> "_SystemAccounts":
        ids = dict(
            Account.objects.filter(facility=facility, inmate=None)
            .filter(models.Q(provider=PROVIDER) | ~models.Q(kind=Account.Kind.CLEARING))
            .values_list("kind", "id")
        )
        return cls(ids[Account.Kind.CLEARING], ids[Account.Kind.FEES], ids[Account.Kind.SALES])


def _write_batch(
    plans: Sequence[InmatePlan],
    *,
    facility: Facility,
    housing_unit_ids: Sequence[int],
    pin_hashes: Sequence[str],
    system: _SystemAccounts,
    now: dt.datetime,
) -> None:
    """Insert the inmates of ``plans`` with their accounts, periods, deposits and journal:
    the rows the services would write for them, in one go. Call inside one transaction."""
    month = facility.local_month(now)
    with connection.cursor() as cursor:
        bulk = _BulkRows(cursor)
        if bulk.is_postgresql:
            # Every pgtrigger trigger first asks whether it is ignored, by reading the setting
            # pgtrigger.ignore. Never set, the read raises, and catching that costs a
            # subtransaction: about a millisecond a row at commit, minutes for a large seed.
            # An explicit empty list (ignore nothing) takes the fast path; every trigger
            # still runs and still checks.
            cursor.execute("SET LOCAL pgtrigger.ignore = '{}'")
        funded = [plan for plan in plans if plan.deposits]
        inmate_ids = iter(bulk.reserve_ids(Inmate, len(plans)))
        account_ids = iter(bulk.reserve_ids(Account, 2 * len(plans)))
        period_ids = iter(bulk.reserve_ids(MonthlyPeriod, len(funded)))
        deposit_ids = iter(bulk.reserve_ids(Deposit, sum(len(p.deposits) for p in plans)))
        transaction_ids = iter(bulk.reserve_ids(Transaction, sum(len(p.deposits) for p in plans)))
        rows: dict[type[models.Model], list[dict]] = {
            model: [] for model in (Inmate, Account, MonthlyPeriod, Deposit, Transaction, Entry)
        }  # in foreign-key order
        for plan in plans:
            inmate_id, number = next(inmate_ids), inmate_number(plan.index)
            rows[Inmate].append(
                {
                    "id": inmate_id,
                    "facility_id": facility.pk,
                    "housing_unit_id": housing_unit_ids[(plan.index - 1) % len(housing_unit_ids)],
                    "inmate_number": number,
                    "surname": plan.surname,
                    "given_name": plan.given_name,
                    "status": Inmate.Status.ACTIVE,
                    "pin_hash": pin_hashes[pin_slot(plan.index)],
                    "card_token": secrets.token_urlsafe(24),
                    "admitted_at": plan.admitted_at,
                }
            )
            # As open_inmate_accounts opens them, with the balance the entries below add up
            # to already in place (the same database transaction writes both).
            spendable_id, held_id = next(account_ids), next(account_ids)
            for account_id, kind, balance_fen, balance_cap_fen in (
                (
                    spendable_id,
                    Account.Kind.SPENDABLE,
                    plan.spendable_fen,
                    facility.balance_cap_fen,
                ),
                (held_id, Account.Kind.HELD, 0, None),
            ):
                rows[Account].append(
                    {
                        "id": account_id,
                        "kind": kind,
                        "facility_id": facility.pk,
                        "inmate_id": inmate_id,
                        "provider": "",
                        "currency": facility.currency,
                        "balance_fen": balance_fen,
                        "pending_fen": 0,
                        "balance_cap_fen": balance_cap_fen,
                        "is_frozen": False,
                        "is_closed": False,
                        "created_at": now,
                    }
                )
            if plan.deposits:
                period_id = next(period_ids)
                rows[MonthlyPeriod].append(
                    {
                        "id": period_id,
                        "inmate_id": inmate_id,
                        "facility_id": facility.pk,
                        "month": month,
                        "received_fen": plan.received_fen,
                        "reserved_fen": 0,
                        "cap_fen": facility.monthly_cap_fen,
                    }
                )
            for sequence, deposit in enumerate(plan.deposits, start=1):
                # What reserve_deposit and then credit_deposit write.
                deposit_id, transaction_id = next(deposit_ids), next(transaction_ids)
                deposit_key = f"demo:{facility.code}:{number}:deposit:{sequence}"
                rows[Deposit].append(
                    {
                        "id": deposit_id,
                        "reference": uuid.uuid4(),
                        "inmate_id": inmate_id,
                        "facility_id": facility.pk,
                        "period_id": period_id,
                        "amount_fen": deposit.amount_fen,
                        "fee_fen": deposit.fee_fen,
                        "currency": facility.currency,
                        "provider": PROVIDER,
                        "provider_reference": "",
                        "status": Deposit.Status.CREDITED,
                        "idempotency_scope": SYSTEM_SCOPE,
                        "idempotency_key": deposit_key,
                        "request_hash": request_hash(
                            "reserve_deposit",
                            inmate_id=inmate_id,
                            amount_fen=deposit.amount_fen,
                            provider=PROVIDER,
                            depositor_id=None,
                        ),
                        "created_at": deposit.created_at,
                        "expires_at": deposit.created_at + DEPOSIT_RESERVATION_TTL,
                        "resolved_at": deposit.credited_at,
                    }
                )
                rows[Transaction].append(
                    {
                        "id": transaction_id,
                        "kind": Transaction.Kind.DEPOSIT,
                        "idempotency_scope": SYSTEM_SCOPE,
                        "idempotency_key": f"deposit-credit:{deposit_id}",
                        "request_hash": request_hash("credit_deposit", deposit_id=deposit_id),
                        "facility_id": facility.pk,
                        "inmate_id": inmate_id,
                        "deposit_id": deposit_id,
                        "memo": "",
                        "created_at": deposit.credited_at,
                    }
                )
                legs = [
                    (system.clearing_id, -(deposit.amount_fen + deposit.fee_fen)),
                    (spendable_id, deposit.amount_fen),
                    (system.fees_id, deposit.fee_fen),
                ]
                rows[Entry] += _entries(transaction_id, legs)
        for model, model_rows in rows.items():
            bulk.insert(model, model_rows)


def _entries(transaction_id: int, legs: Sequence[tuple[int, int]]) -> list[dict]:
    """A transaction's entries, as the services' posting helper writes them: zero legs
    dropped, and legs that do not sum to zero refused before anything is written."""
    if sum(amount for _, amount in legs) != 0:
        raise ValueError(f"unbalanced transaction legs: {legs!r}")
    return [
        {"transaction_id": transaction_id, "account_id": account_id, "amount_fen": amount}
        for account_id, amount in legs
        if amount != 0
    ]
