"""The ledger's bulk path: many inmates' money written at once with COPY (``executemany`` on
SQLite), for loading a large demo or a migration from another system. It writes exactly the
rows the services would: the inmate's spendable and held accounts (as ``open_inmate_accounts``
opens them, the balance already summed), this month's period, each deposit as
``reserve_deposit`` then ``credit_deposit`` leave it, and each purchase as ``post_purchase``
writes it, under the same keys and request hashes, so replaying a loaded deposit's key through
the real service is recognised as the same request (invariant 6).

Every transaction goes through ``_posting_rows``, which refuses legs that do not sum to zero
before anything is written (invariant 1); the database's deferred balance triggers and CHECK
constraints then hold the whole batch to the invariants at commit, as they hold the services.
Call inside one ``transaction.atomic()``; the inmate rows themselves are the caller's."""

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from django.db import connection, models

from facilities.models import Facility

from . import sql
from .models import Account, Deposit, Entry, MonthlyPeriod, Transaction
from .services import (
    DEPOSIT_RESERVATION_TTL,
    SYSTEM_SCOPE,
    purchase_request_hash,
    request_hash_of,
)


class BulkRows:
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

    def skip_ignore_lookups(self) -> None:
        """Every pgtrigger trigger first asks whether it is ignored, by reading the setting
        pgtrigger.ignore. Never set, the read raises, and catching that costs a
        subtransaction: about a millisecond a row at commit, minutes for a large load. An
        explicit empty list (ignore nothing) takes the fast path; every trigger still runs and
        still checks."""
        if self.is_postgresql:
            self.cursor.execute("SET LOCAL pgtrigger.ignore = '{}'")


@dataclass(frozen=True)
class LoadedDeposit:
    """A deposit already paid and credited: ``key`` is its reservation's system key."""

    key: str
    amount_fen: int
    fee_fen: int
    created_at: dt.datetime
    credited_at: dt.datetime


@dataclass(frozen=True)
class LoadedPurchase:
    """A purchase already debited, under the system key ``key``."""

    key: str
    amount_fen: int
    memo: str
    created_at: dt.datetime


@dataclass(frozen=True)
class InmateMoney:
    """What one newly admitted inmate has received and spent this month."""

    inmate_id: int
    deposits: Sequence[LoadedDeposit]
    purchases: Sequence[LoadedPurchase]


@dataclass(frozen=True)
class SystemAccounts:
    """The facility's system accounts a load posts against."""

    clearing_id: int
    fees_id: int
    sales_id: int

    @classmethod
    def of(cls, facility: Facility, *, provider: str) -> "SystemAccounts":
        ids = dict(
            Account.objects.filter(facility=facility, inmate=None)
            .filter(models.Q(provider=provider) | ~models.Q(kind=Account.Kind.CLEARING))
            .values_list("kind", "id")
        )
        return cls(ids[Account.Kind.CLEARING], ids[Account.Kind.FEES], ids[Account.Kind.SALES])


def load_inmate_money(
    bulk: BulkRows,
    *,
    facility: Facility,
    provider: str,
    system: SystemAccounts,
    inmates: Sequence[InmateMoney],
    now: dt.datetime,
) -> None:
    """Write the ledger rows of newly admitted ``inmates`` (their inmate rows already written
    in this transaction): accounts, this month's period, credited deposits and purchases
    with their journal. Refuses, before writing anything, a transaction whose legs do not
    balance or an inmate whose purchases exceed their deposits. About 90 lines: one loop
    building every table's rows from the same reserved ids, so they refer to each other."""
    month = facility.local_month(now)
    funded = [inmate for inmate in inmates if inmate.deposits]
    account_ids = iter(bulk.reserve_ids(Account, 2 * len(inmates)))
    period_ids = iter(bulk.reserve_ids(MonthlyPeriod, len(funded)))
    deposit_ids = iter(bulk.reserve_ids(Deposit, sum(len(i.deposits) for i in inmates)))
    transaction_ids = iter(
        bulk.reserve_ids(Transaction, sum(len(i.deposits) + len(i.purchases) for i in inmates))
    )
    rows: dict[type[models.Model], list[dict]] = {
        model: [] for model in (Account, MonthlyPeriod, Deposit, Transaction, Entry)
    }  # in foreign-key order
    for inmate in inmates:
        received_fen = sum(deposit.amount_fen for deposit in inmate.deposits)
        spendable_fen = received_fen - sum(purchase.amount_fen for purchase in inmate.purchases)
        if spendable_fen < 0:
            raise ValueError(f"inmate {inmate.inmate_id} spends more than was deposited")
        spendable_id, held_id = next(account_ids), next(account_ids)
        rows[Account] += _account_rows(
            facility, inmate.inmate_id, spendable_id, held_id, spendable_fen, now
        )
        period_id = None
        if inmate.deposits:
            period_id = next(period_ids)
            rows[MonthlyPeriod].append(
                {
                    "id": period_id,
                    "inmate_id": inmate.inmate_id,
                    "facility_id": facility.pk,
                    "month": month,
                    "received_fen": received_fen,
                    "reserved_fen": 0,
                    "cap_fen": facility.monthly_cap_fen,
                }
            )
        for deposit in inmate.deposits:
            deposit_id = next(deposit_ids)
            rows[Deposit].append(
                _deposit_row(facility, inmate.inmate_id, deposit_id, period_id, deposit, provider)
            )
            _posting_rows(
                rows,
                transaction_id=next(transaction_ids),
                kind=Transaction.Kind.DEPOSIT,
                key=f"deposit-credit:{deposit_id}",
                request_hash=request_hash_of("credit_deposit", deposit_id=deposit_id),
                facility_id=facility.pk,
                inmate_id=inmate.inmate_id,
                deposit_id=deposit_id,
                memo="",
                created_at=deposit.credited_at,
                legs=[
                    (system.clearing_id, -(deposit.amount_fen + deposit.fee_fen)),
                    (spendable_id, deposit.amount_fen),
                    (system.fees_id, deposit.fee_fen),
                ],
            )
        for purchase in inmate.purchases:
            _posting_rows(
                rows,
                transaction_id=next(transaction_ids),
                kind=Transaction.Kind.PURCHASE,
                key=purchase.key,
                request_hash=purchase_request_hash(
                    inmate_id=inmate.inmate_id,
                    amount_fen=purchase.amount_fen,
                    memo=purchase.memo,
                ),
                facility_id=facility.pk,
                inmate_id=inmate.inmate_id,
                deposit_id=None,
                memo=purchase.memo,
                created_at=purchase.created_at,
                legs=[(spendable_id, -purchase.amount_fen), (system.sales_id, purchase.amount_fen)],
            )
    for model, model_rows in rows.items():
        bulk.insert(model, model_rows)


def _account_rows(facility, inmate_id, spendable_id, held_id, spendable_fen, now) -> Iterator[dict]:
    """The inmate's spendable and held accounts as ``open_inmate_accounts`` opens them, with
    the balance their entries add up to already in place (the same transaction writes both)."""
    for account_id, kind, balance_fen, balance_cap_fen in (
        (spendable_id, Account.Kind.SPENDABLE, spendable_fen, facility.balance_cap_fen),
        (held_id, Account.Kind.HELD, 0, None),
    ):
        yield {
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


def _deposit_row(facility, inmate_id, deposit_id, period_id, deposit, provider) -> dict:
    """A deposit as ``reserve_deposit`` and then ``credit_deposit`` leave it."""
    return {
        "id": deposit_id,
        "reference": uuid.uuid4(),
        "inmate_id": inmate_id,
        "facility_id": facility.pk,
        "period_id": period_id,
        "amount_fen": deposit.amount_fen,
        "fee_fen": deposit.fee_fen,
        "currency": facility.currency,
        "provider": provider,
        "provider_reference": "",
        "status": Deposit.Status.CREDITED,
        "idempotency_scope": SYSTEM_SCOPE,
        "idempotency_key": deposit.key,
        "request_hash": request_hash_of(
            "reserve_deposit",
            inmate_id=inmate_id,
            amount_fen=deposit.amount_fen,
            provider=provider,
            depositor_id=None,
        ),
        "created_at": deposit.created_at,
        "expires_at": deposit.created_at + DEPOSIT_RESERVATION_TTL,
        "resolved_at": deposit.credited_at,
    }


def _posting_rows(
    rows: dict[type[models.Model], list[dict]],
    *,
    transaction_id: int,
    kind: str,
    key: str,
    request_hash: str,
    facility_id: int,
    inmate_id: int,
    deposit_id: int | None,
    memo: str,
    created_at: dt.datetime,
    legs: Sequence[tuple[int, int]],
) -> None:
    """One transaction and its entries, as the services' posting helper writes them: zero
    legs dropped, and legs that do not sum to zero refused before anything is written."""
    if sum(amount for _, amount in legs) != 0:
        raise ValueError(f"unbalanced transaction legs: {legs!r}")
    rows[Transaction].append(
        {
            "id": transaction_id,
            "kind": kind,
            "idempotency_scope": SYSTEM_SCOPE,
            "idempotency_key": key,
            "request_hash": request_hash,
            "facility_id": facility_id,
            "inmate_id": inmate_id,
            "deposit_id": deposit_id,
            "memo": memo,
            "created_at": created_at,
        }
    )
    rows[Entry] += [
        {
            "transaction_id": transaction_id,
            "account_id": account_id,
            "amount_fen": amount,
            "created_at": created_at,
        }
        for account_id, amount in legs
        if amount != 0
    ]
