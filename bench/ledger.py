"""Throughput of the ledger's hot paths: the services against the same SQL through psycopg.

    DATABASE_URL=postgres://user@host:5432/commissary_bench python bench/ledger.py --seconds 10

Measures deposits (``reserve_deposit``, then monitoring's screening as a paid callback asks it
between reserve and credit, then ``credit_deposit``: the whole two-phase flow) at a facility
with no monitoring rule (``deposits``) and at one with ten active rules (``deposits, 10
rules``), and purchases (the ledger's ``post_purchase`` under the inmate's account lock, as a
kiosk order posts its debit; ``bench/kiosk.py`` measures the whole order) per second with 1
client, 8 clients on 8 inmates, and 8 clients on one hot inmate. Each deposit comes from its
inmate's own depositor and payer, as a family's does. Beside each figure it measures, in the
same run, a raw baseline: the statements the services issue — the ``FOR NO KEY UPDATE OF s, h`` lock
query, the period insert and conditional update, the account update, the deposit, transaction
and entry inserts, the screening's rule look-up and its one aggregate over the window rules, the
credit's status update returning the credited deposit — in the same transactions, through a bare
psycopg connection with the same client-side binding Django uses. Neither side reads anything
back after it writes. The ratio services/raw is what Django and the service code cost on top of
the SQL; the goal is at least 0.7 with 8 clients on 8 inmates (the last line). The ratio of
deposits with ten rules to deposits with none is what the rules cost (the goal is at least 0.9,
issue 19).

A last phase puts 32 clients on ONE inmate through the services and compares that inmate's
throughput with its own 1-client rate: the row lock serialises them, and the question is how
much of one client's rate survives the queue (the goal is half).

Every client is its own process (its own Django connection, and a psycopg connection once it
runs a raw measurement), so neither side is held back by the GIL. The benchmark creates the
database if it is missing, migrates it, and adds its own facility (caps raised so they never run
out) and inmates; each side of each phase has inmates of its own, so no measurement inherits
another's row history. Use a database of its own: the data stays there.
"""

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import re
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import NamedTuple

# Run as a script, Python puts this file's folder first on the path, where this file would
# shadow the ledger app: the project root goes there instead (see bench/common.py).
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]
from bench.common import (  # noqa: E402
    benchmark_database_url,
    ensure_database,
    open_raw,
    raw_connection_params,
    setup_django,
)

CLIENTS = 8
HOT_CLIENTS = 32  # the last phase: this many clients all on one inmate
DEPOSIT_FEN = 10_000  # ¥100.00, with the facility's 1% fee on top
PURCHASE_FEN = 1_000
SEED_FEN = 10**11  # what each purchasing inmate starts with: enough for any run
CAP_FEN = 10**14  # both facility caps, far above anything a run can reach
START_DELAY_SECONDS = 0.5  # time for every client to warm up before the clock starts
HOT_SETTLE_SECONDS = 2.0  # the one-inmate queue forms before its operations are counted
HOT_TARGET = 0.5  # one inmate's rate at HOT_CLIENTS clients, as a share of its 1-client rate

RULED = "deposits, 10 rules"  # deposits at a facility with ten active monitoring rules
OPERATIONS = ("deposits", RULED, "purchases")
# The ledger's own operations: the one-inmate phase and the services/raw goal are theirs.
LEDGER_OPERATIONS = ("deposits", "purchases")
RULE_WINDOW_DAYS = 30  # the window rules count this many facility-local days
NEVER_FEN = 10**13  # an amount threshold no benchmark deposit reaches
NEVER_COUNT = 10**6  # a count no benchmark window reaches
PHASES = (  # label, clients, whether they share one inmate
    ("1 client", 1, False),
    ("8 clients", CLIENTS, False),
    ("8 clients 1 inmate", CLIENTS, True),
)
SIDES = ("services", "raw")


# --- the raw baseline -------------------------------------------------------------------


DEPOSIT_COLUMNS = (
    "reference, inmate_id, facility_id, period_id, depositor_id, amount_fen, fee_fen, currency, "
    "provider, provider_reference, status, idempotency_scope, idempotency_key, request_hash, "
    "created_at, expires_at, resolved_at"
)
# The credited deposit as the credit's status update returns it: every column of the Deposit
# model, in its field order (ledger.services.posting.returning_columns).
DEPOSIT_RETURNING = (
    "id, idempotency_scope, idempotency_key, request_hash, reference, inmate_id, facility_id, "
    "period_id, depositor_id, amount_fen, fee_fen, currency, provider, provider_reference, "
    "status, created_at, expires_at, resolved_at"
)
TRANSACTION_COLUMNS = (
    "kind, idempotency_scope, idempotency_key, request_hash, facility_id, inmate_id, "
    "deposit_id, refund_of_id, reverses_id, memo, created_by_id, approved_by_id, created_at"
)


# The screening's statements (``monitoring.screening``), text for text as Django sends them: the
# facility's active rules, with the month's figures for a near-cap rule and the depositor's
# sign-up time for a new-depositor rule, then ONE aggregate with a filtered count per window rule.
RULE_COLUMNS = (
    '"monitoring_rule"."id", "monitoring_rule"."facility_id", "monitoring_rule"."kind", '
    '"monitoring_rule"."depositor_id", "monitoring_rule"."inmate_id", '
    '"monitoring_rule"."payer_fingerprint", "monitoring_rule"."payer_label", '
    '"monitoring_rule"."amount_fen", "monitoring_rule"."count", "monitoring_rule"."days", '
    '"monitoring_rule"."percent", "monitoring_rule"."note", "monitoring_rule"."is_active", '
    '"monitoring_rule"."version", "monitoring_rule"."updated_by_id", '
    '"monitoring_rule"."updated_at"'
)
_WHEN_KIND = 'CASE WHEN "monitoring_rule"."kind" = %s THEN (SELECT U0.'
_SINCE = '"ledger_deposit"."created_at" >= %s'
_PAYER = '"payments_payment"."payer_fingerprint" = %s'
SCREENING_SQL = {
    "rules": f"SELECT {RULE_COLUMNS}, "  # noqa: S608 - constants
    f'{_WHEN_KIND}"cap_fen" AS "cap_fen" FROM "ledger_monthlyperiod" U0 WHERE U0."id" = %s) '
    'ELSE NULL END AS "period_cap_fen", '
    f'{_WHEN_KIND}"received_fen" AS "received_fen" FROM "ledger_monthlyperiod" U0 '
    'WHERE U0."id" = %s) ELSE NULL END AS "period_received_fen", '
    f'{_WHEN_KIND}"date_joined" AS "date_joined" FROM "accounts_user" U0 WHERE U0."id" = %s) '
    'ELSE NULL END AS "depositor_joined" FROM "monitoring_rule" '
    'WHERE ("monitoring_rule"."facility_id" = %s AND "monitoring_rule"."is_active")',
    # One filtered count per window rule, ``{alias}`` its ``rule_<id>``.
    "deposits_from_depositor": 'COUNT("ledger_deposit"."id") FILTER '
    f'(WHERE ({_SINCE} AND "ledger_deposit"."depositor_id" = %s)) AS "{{alias}}"',
    "depositors_to_inmate": 'COUNT(DISTINCT "ledger_deposit"."depositor_id") FILTER '
    f'(WHERE ({_SINCE} AND "ledger_deposit"."inmate_id" = %s AND NOT '
    '("ledger_deposit"."depositor_id" = %s AND "ledger_deposit"."depositor_id" IS NOT NULL))) '
    'AS "{alias}"',
    "inmates_from_depositor": 'COUNT(DISTINCT "ledger_deposit"."inmate_id") FILTER '
    f'(WHERE ({_SINCE} AND "ledger_deposit"."depositor_id" = %s AND NOT '
    '("ledger_deposit"."inmate_id" = %s))) AS "{alias}"',
    "deposits_from_source": 'COUNT("ledger_deposit"."id") FILTER '
    f'(WHERE ({_SINCE} AND {_PAYER})) AS "{{alias}}"',
    # The deposits those counts read: the depositor's, the inmate's, the payer's.
    "from_depositor": '"ledger_deposit"."depositor_id" = %s',
    "to_inmate": '"ledger_deposit"."inmate_id" = %s',
    "from_payer": '"ledger_deposit"."id" = ANY(ARRAY(SELECT U0."deposit_id" AS "deposit_id" '
    'FROM "payments_payment" U0 WHERE U0."payer_fingerprint" = %s))',
    "window": 'SELECT {counts} FROM "ledger_deposit" '  # noqa: S608 - constants
    'LEFT OUTER JOIN "payments_payment" '
    'ON ("ledger_deposit"."id" = "payments_payment"."deposit_id") WHERE (({parties}) '
    f'AND {_SINCE} AND "ledger_deposit"."status" IN (%s, %s) '
    'AND NOT ("ledger_deposit"."id" = %s))',
}
# Each window rule's party, in the order the services OR them.
WINDOW_PARTIES = {
    "deposits_from_depositor": "from_depositor",
    "inmates_from_depositor": "from_depositor",
    "depositors_to_inmate": "to_inmate",
    "deposits_from_source": "from_payer",
}


def _hash(operation: str, **fields) -> str:
    canonical = json.dumps({"operation": operation, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _placeholders(columns: str) -> str:
    return ", ".join(["%s"] * len(columns.split(",")))


class RawLedger:
    """Reserve, credit and purchase as the services do them, statement for statement and
    transaction for transaction, with none of the framework: tuples in, tuples out. Each
    transaction is BEGIN ... COMMIT on an autocommit connection, as ``transaction.atomic()``
    does it. Like the services, it reads nothing back: the credited deposit is the status
    update's ``RETURNING`` row, a purchase is what was inserted.

    ``check_statements`` holds it to that: the statements of one deposit and one purchase
    each way, their literals taken out, must be the same text in the same order, or the
    benchmark stops. With ``recorded`` set to a list, each statement is appended to it as
    sent (the check's side; the measured side records nothing)."""

    def __init__(self, connection):
        from ledger.locks import lock_sql  # Django is set up in the client

        # The services' own lock query, text for text: the baseline cannot drift from it.
        self.lock_by_inmate_sql = lock_sql("inmate")
        self.lock_by_deposit_sql = lock_sql("deposit")
        self.connection = connection
        self.cursor = connection.cursor()
        self.statements = 0
        self.transactions = 0
        self.recorded: list[str] | None = None

    def _transaction(self):
        self.transactions += 1
        return self.connection.transaction()

    def _execute(self, sql: str, params) -> None:
        self.statements += 1
        if self.recorded is not None:
            self.recorded.append(self.cursor.mogrify(sql, params))
        self.cursor.execute(sql, params)

    def _lock(self, sql: str, key: int, provider: str = "") -> tuple:
        self._execute(sql, {"key": key, "provider": provider})
        row = self.cursor.fetchone()
        if row is None:
            raise RuntimeError(f"no open accounts for {key}")
        return row

    def _post(
        self,
        *,
        kind,
        scope,
        key,
        request_hash,
        facility_id,
        inmate_id,
        deposit_id,
        legs,
        moved,
        now,
    ):
        """The services' one posting statement: the cached balances of the inmate's accounts
        that move (``moved``: account id -> (balance delta, pending delta)), the transaction,
        and its entries, in one ``WITH``."""
        row = [kind, scope, key, request_hash, facility_id, inmate_id, deposit_id]
        row += [None, None, "", None, None, now]
        when = " ".join("WHEN %s THEN %s" for _ in moved)
        self._execute(
            "WITH moved AS (UPDATE ledger_account SET "  # noqa: S608 - constants and placeholders; values are bound
            f"balance_fen = balance_fen + CASE id {when} ELSE 0 END, "
            f"pending_fen = pending_fen + CASE id {when} ELSE 0 END "
            f"WHERE id IN ({', '.join(['%s'] * len(moved))})), "
            f"posted AS (INSERT INTO ledger_transaction ({TRANSACTION_COLUMNS}) "
            f"VALUES ({_placeholders(TRANSACTION_COLUMNS)}) RETURNING id, created_at) "
            "INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "
            "SELECT posted.id, leg.account_id, leg.amount_fen, posted.created_at "
            "FROM posted, (VALUES "
            + ", ".join(["(%s::bigint, %s::bigint)"] * len(legs))
            + ") AS leg (account_id, amount_fen) RETURNING transaction_id",
            [
                *[v for account_id, (balance, _) in moved.items() for v in (account_id, balance)],
                *[v for account_id, (_, pending) in moved.items() for v in (account_id, pending)],
                *moved,
                *row,
                *[v for leg in legs for v in leg],
            ],
        )
        transaction_id = self.cursor.fetchone()[0]
        return (transaction_id, *row)

    def reserve_deposit(
        self,
        *,
        inmate_id: int,
        amount_fen: int,
        idempotency_key: str,
        idempotency_scope: str,
        depositor_id: int | None = None,
    ) -> "Reserved":
        from facilities.models import local_month

        now = dt.datetime.now(dt.UTC)
        request_hash = _hash(
            "reserve_deposit",
            inmate_id=inmate_id,
            amount_fen=amount_fen,
            provider="sandbox",
            depositor_id=depositor_id,
        )
        with self._transaction():
            row = self._lock(self.lock_by_inmate_sql, inmate_id, "sandbox")
            (inmate_id, facility_id, spendable_id, _, spendable_fen, pending_fen, held_fen) = row[
                :7
            ]
            cap_fen, is_frozen, is_closed, currency, timezone, monthly_cap_fen = row[7:13]
            fee_fixed_fen, fee_rate_bp = row[13:15]
            if is_closed or is_frozen or row[20] is None:
                raise RuntimeError("the inmate cannot receive deposits")
            if amount_fen > cap_fen - spendable_fen - held_fen - pending_fen:
                raise RuntimeError("over the balance cap")
            month = local_month(now, timezone)
            # The facility's single-deposit and monthly-count limits, under the lock.
            self._execute(
                "SELECT f.max_deposit_fen, f.max_deposits_per_month, "
                "(SELECT COUNT(*) FROM ledger_deposit d JOIN ledger_monthlyperiod p "
                "ON p.id = d.period_id "
                " WHERE p.inmate_id = %s AND p.month = %s "
                "AND d.status IN ('created', 'held', 'credited')) "
                "FROM facilities_facility f WHERE f.id = %s",
                [inmate_id, month, facility_id],
            )
            max_deposit_fen, max_per_month, this_month = self.cursor.fetchone()
            if max_deposit_fen is not None and amount_fen > max_deposit_fen:
                raise RuntimeError("over the single-deposit limit")
            if max_per_month is not None and this_month >= max_per_month:
                raise RuntimeError("over the monthly deposit count")
            self._execute(
                "INSERT INTO ledger_monthlyperiod (inmate_id, facility_id, month, received_fen, "
                "reserved_fen, cap_fen) VALUES (%s, %s, %s, 0, 0, %s) "
                "ON CONFLICT (inmate_id, month) DO NOTHING",
                [inmate_id, facility_id, month, monthly_cap_fen],
            )
            self._execute(
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen + %s "
                "WHERE inmate_id = %s AND month = %s "
                "AND received_fen + reserved_fen + %s <= cap_fen RETURNING id",
                [amount_fen, inmate_id, month, amount_fen],
            )
            period = self.cursor.fetchone()
            if period is None:
                raise RuntimeError("over the monthly cap")
            self._execute(
                "UPDATE ledger_account SET pending_fen = pending_fen + %s WHERE id = %s",
                [amount_fen, spendable_id],
            )
            fee_fen = fee_fixed_fen + -(-amount_fen * fee_rate_bp // 10_000)
            self._execute(
                f"INSERT INTO ledger_deposit ({DEPOSIT_COLUMNS}) "  # noqa: S608 - constants
                f"VALUES ({_placeholders(DEPOSIT_COLUMNS)}) RETURNING id",
                [uuid.uuid4(), inmate_id, facility_id, period[0], depositor_id, amount_fen]
                + [fee_fen, currency, "sandbox", "", "created", idempotency_scope]
                + [idempotency_key, request_hash, now, now + dt.timedelta(minutes=30), None],
            )
            return Reserved(self.cursor.fetchone()[0], facility_id, period[0], timezone, now)

    def screen(
        self, reserved: "Reserved", *, inmate_id: int, depositor_id: int, payer_fingerprint: str
    ) -> list:
        """Monitoring's screening of a paid deposit (``monitoring.screening``): the facility's
        active rules, then each one's test in the order they come; the rules that fire."""
        self._execute(
            SCREENING_SQL["rules"],
            ["near_monthly_cap", reserved.period_id, "near_monthly_cap", reserved.period_id]
            + ["new_depositor", depositor_id, reserved.facility_id],
        )
        rules = self.cursor.fetchall()
        fired, windows = [], []
        for rule in rules:
            kind, rule_depositor_id, rule_inmate_id, rule_payer = rule[2], rule[3], rule[4], rule[5]
            amount_at_least_fen, percent = rule[7], rule[10]
            if kind == "monitored_depositor":
                fires = rule_depositor_id == depositor_id
            elif kind == "monitored_inmate":
                fires = rule_inmate_id == inmate_id
            elif kind == "monitored_source":
                fires = rule_payer == payer_fingerprint
            elif kind == "amount_at_least":
                fires = amount_at_least_fen <= DEPOSIT_FEN
            elif kind == "not_whole_yuan":
                fires = DEPOSIT_FEN % 100 != 0
            elif kind == "near_monthly_cap":
                cap_fen, received_fen = rule[16], rule[17]
                fires = (cap_fen - received_fen - DEPOSIT_FEN) * 100 <= cap_fen * percent
            else:
                windows.append(rule)
                continue
            if fires:
                fired.append(rule[0])
        if windows:
            counts = self._window_counts(
                windows,
                reserved,
                inmate_id=inmate_id,
                depositor_id=depositor_id,
                payer_fingerprint=payer_fingerprint,
            )
            fired += [rule[0] for rule, n in zip(windows, counts, strict=True) if n + 1 > rule[8]]
        return fired

    def _window_counts(
        self, windows: list, reserved: "Reserved", *, inmate_id, depositor_id, payer_fingerprint
    ) -> tuple:
        """Every window rule's count (paid, held or credited, in its window, other than this
        deposit) in one aggregate, as the services send it."""
        starts = [_window_start(reserved.now, reserved.timezone, rule[9]) for rule in windows]
        counts, params = [], []
        for rule, start in zip(windows, starts, strict=True):
            counts.append(SCREENING_SQL[rule[2]].format(alias=f"rule_{rule[0]}"))
            params += [start] + {
                "deposits_from_depositor": [depositor_id],
                "depositors_to_inmate": [inmate_id, depositor_id],
                "inmates_from_depositor": [depositor_id, inmate_id],
                "deposits_from_source": [payer_fingerprint],
            }[rule[2]]
        wanted = {WINDOW_PARTIES[rule[2]] for rule in windows}
        party_ids = {
            "from_depositor": depositor_id,
            "to_inmate": inmate_id,
            "from_payer": payer_fingerprint,
        }
        parties = [party for party in party_ids if party in wanted]
        sql = SCREENING_SQL["window"].format(
            counts=", ".join(counts),
            parties=" OR ".join(SCREENING_SQL[party] for party in parties),
        )
        params += [party_ids[party] for party in parties]
        params += [min(starts), "held", "credited", reserved.deposit_id]
        self._execute(sql, params)
        return self.cursor.fetchone()

    def credit_deposit(self, *, deposit_id: int) -> tuple:
        now = dt.datetime.now(dt.UTC)
        with self._transaction():
            # By a deposit, the lock finds the deposit's provider's clearing account itself.
            row = self._lock(self.lock_by_deposit_sql, deposit_id)
            inmate_id, facility_id, spendable_id, fees_id, clearing_id = (
                row[0],
                row[1],
                row[2],
                row[17],
                row[20],
            )
            self._execute(
                "UPDATE ledger_deposit SET status = 'credited', resolved_at = %s, "  # noqa: S608 - column names are a constant; values are bound
                "provider_reference = CASE WHEN %s = '' THEN provider_reference ELSE %s END "
                f"WHERE id = %s AND status = 'created' RETURNING {DEPOSIT_RETURNING}",
                [now, "", "", deposit_id],
            )
            credited = self.cursor.fetchone()
            amount_fen, fee_fen, period_id = credited[9], credited[10], credited[7]
            self._execute(
                "UPDATE ledger_monthlyperiod SET reserved_fen = reserved_fen - %s, "
                "received_fen = received_fen + %s WHERE id = %s",
                [amount_fen, amount_fen, period_id],
            )
            legs = [
                (clearing_id, -(amount_fen + fee_fen)),
                (spendable_id, amount_fen),
                (fees_id, fee_fen),
            ]
            self._post(
                kind="deposit",
                scope="system",
                key=f"deposit-credit:{deposit_id}",
                request_hash=_hash("credit_deposit", deposit_id=deposit_id),
                facility_id=facility_id,
                inmate_id=inmate_id,
                deposit_id=deposit_id,
                legs=[leg for leg in legs if leg[1]],
                moved={spendable_id: (amount_fen, -amount_fen)},
                now=now,
            )
        return credited

    def post_purchase(
        self, *, inmate_id: int, amount_fen: int, idempotency_key: str, idempotency_scope: str
    ) -> tuple:
        now = dt.datetime.now(dt.UTC)
        # ledger.services.purchase_request_hash, the recipe under its first name
        request_hash = _hash("debit_purchase", inmate_id=inmate_id, amount_fen=amount_fen, memo="")
        with self._transaction():
            row = self._lock(self.lock_by_inmate_sql, inmate_id)
            inmate_id, facility_id, spendable_id, spendable_fen = row[0], row[1], row[2], row[4]
            is_frozen, is_closed, sales_id = row[8], row[9], row[16]
            if is_closed or is_frozen:
                raise RuntimeError("the inmate cannot spend")
            if spendable_fen < amount_fen:
                raise RuntimeError("insufficient funds")
            return self._post(
                kind="purchase",
                scope=idempotency_scope,
                key=idempotency_key,
                request_hash=request_hash,
                facility_id=facility_id,
                inmate_id=inmate_id,
                deposit_id=None,
                legs=[(spendable_id, -amount_fen), (sales_id, amount_fen)],
                moved={spendable_id: (-amount_fen, 0)},
                now=now,
            )


class Reserved(NamedTuple):
    """What the raw reserve knows of the deposit it reserved, for the screening."""

    deposit_id: int
    facility_id: int
    period_id: int
    timezone: str
    now: dt.datetime


def _window_start(now: dt.datetime, timezone: str, days: int) -> dt.datetime:
    """Local midnight starting a window of ``days`` facility-local days ending today: the
    screening's own parameter, so the raw side binds exactly what the services bind."""
    from monitoring.screening import window_start

    return window_start(now, timezone, days)


def open_raw_ledger(params: dict) -> RawLedger:
    import psycopg

    return RawLedger(open_raw(params, cursor_factory=psycopg.ClientCursor))


# --- one operation, either way ----------------------------------------------------------


def operation_for(side: str, operation: str, raw: RawLedger | None):
    """A function of (inmate id, idempotency key) doing one deposit or one purchase."""
    if side == "services":
        from django.utils import timezone

        from ledger import services as ledger_services
        from payments import screening

        if operation in ("deposits", RULED):

            def deposit(inmate_id: int, key: str) -> None:
                depositor_id, facility, payer_fingerprint = bench_party(inmate_id)
                now = timezone.now()
                reserved = ledger_services.reserve_deposit(
                    idempotency_scope=f"depositor:{depositor_id}",
                    inmate_id=inmate_id,
                    amount_fen=DEPOSIT_FEN,
                    idempotency_key=key,
                    depositor_id=depositor_id,
                    now=now,
                )
                # As a paid callback asks it: the payment's query joins the deposit's facility.
                reserved.facility = facility
                if screening.fired_rules(
                    deposit=reserved, payer_fingerprint=payer_fingerprint, now=now
                ):
                    raise RuntimeError("a monitoring rule fired on a benchmark deposit")
                ledger_services.credit_deposit(deposit_id=reserved.pk)

            return deposit

        from django.db import connection, transaction

        from ledger.locks import lock_inmate_accounts

        def purchase(inmate_id: int, key: str) -> None:
            # The debit as ``place_order`` posts it: the lock, then ``post_purchase``, in one
            # transaction (the order's own statements around it are bench/kiosk.py's).
            with transaction.atomic(), connection.cursor() as cursor:
                locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
                ledger_services.post_purchase(
                    cursor,
                    locked=locked,
                    amount_fen=PURCHASE_FEN,
                    idempotency_scope="kiosk:1",
                    idempotency_key=key,
                    request_hash=ledger_services.purchase_request_hash(
                        inmate_id=inmate_id, amount_fen=PURCHASE_FEN, memo=""
                    ),
                    memo="",
                    now=timezone.now(),
                )

        return purchase

    if operation in ("deposits", RULED):

        def raw_deposit(inmate_id: int, key: str) -> None:
            depositor_id, _facility, payer_fingerprint = bench_party(inmate_id)
            reserved = raw.reserve_deposit(
                idempotency_scope=f"depositor:{depositor_id}",
                inmate_id=inmate_id,
                amount_fen=DEPOSIT_FEN,
                idempotency_key=key,
                depositor_id=depositor_id,
            )
            fired = raw.screen(
                reserved,
                inmate_id=inmate_id,
                depositor_id=depositor_id,
                payer_fingerprint=payer_fingerprint,
            )
            if fired:
                raise RuntimeError("a monitoring rule fired on a benchmark deposit")
            raw.credit_deposit(deposit_id=reserved.deposit_id)

        return raw_deposit

    def raw_purchase(inmate_id: int, key: str) -> None:
        raw.post_purchase(
            idempotency_scope="kiosk:1",
            inmate_id=inmate_id,
            amount_fen=PURCHASE_FEN,
            idempotency_key=key,
        )

    return raw_purchase


_parties: dict[int, tuple] = {}


def bench_party(inmate_id: int) -> tuple:
    """The inmate's depositor, facility and payer's keyed hash, read once per client process
    (the warm-up reads them) so that no measured deposit reads them."""
    if inmate_id not in _parties:
        from accounts.models import User
        from facilities.models import Inmate
        from payments import payers

        facility = Inmate.objects.select_related("facility").get(pk=inmate_id).facility
        depositor_id = User.objects.values_list("pk", flat=True).get(
            username=f"bench-depositor-{inmate_id}"
        )
        payer = payers.fingerprint("sandbox", f"bench-payer-{depositor_id}")
        _parties[inmate_id] = (depositor_id, facility, payer)
    return _parties[inmate_id]


# --- clients ------------------------------------------------------------------------------


def client(number: int, database_url: str, is_commit_async: bool, commands, results) -> None:
    """One client process: waits for a measurement, warms up, runs it from the shared start
    instant for the given seconds, and reports how many operations completed in time. Its
    raw connection opens with its first raw measurement (the one-inmate phase has none)."""
    setup_django(database_url)
    from django.db import connection

    raw = None
    if is_commit_async:
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
    results.put((number, None, None, None))  # ready
    try:
        while (command := commands.get()) is not None:
            side, operation, inmate_id, key_prefix, start_at, count_from, end_at = command
            try:
                if side == "raw" and raw is None:
                    raw = open_raw_ledger(raw_connection_params())
                    if is_commit_async:
                        raw.connection.execute("SET synchronous_commit = off")
                run = operation_for(side, operation, raw)
                run(inmate_id, f"{key_prefix}-warm")  # connection open, caches filled
                time.sleep(max(0.0, start_at - time.time()))
                cpu_at_start = time.process_time()
                done = started = 0
                while True:
                    run(inmate_id, f"{key_prefix}-{started}")
                    started += 1
                    finished_at = time.time()
                    if finished_at > end_at:
                        break
                    done += finished_at >= count_from
                results.put((number, done, time.process_time() - cpu_at_start, None))
            except Exception as failure:  # reported, and the run stops
                results.put((number, 0, 0.0, f"{type(failure).__name__}: {failure}"))
    finally:
        connection.close()
        if raw is not None:
            raw.connection.close()


class Clients:
    """``count`` client processes, started once and given one measurement at a time."""

    def __init__(self, database_url: str, *, count: int, is_commit_async: bool):
        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.queues = [context.Queue() for _ in range(count)]
        self.processes = [
            context.Process(
                target=client,
                args=(number, database_url, is_commit_async, queue, self.results),
                daemon=True,
            )
            for number, queue in enumerate(self.queues)
        ]
        for process in self.processes:
            process.start()
        for _ in self.processes:
            self.results.get()  # each is set up and connected

    def run(
        self, *, side, operation, inmate_ids, key_prefix, seconds, settle_seconds=0.0
    ) -> tuple[int, float]:
        """How many operations len(inmate_ids) clients complete together in ``seconds``,
        client i working on inmate i, and the CPU seconds the clients spent on them. With
        ``settle_seconds`` the clients start that long before the counted ``seconds``: a
        queue on one inmate's lock takes a while to form, and its first seconds are no
        steady state."""
        start_at = time.time() + START_DELAY_SECONDS
        count_from = start_at + settle_seconds
        end_at = count_from + seconds
        for number, inmate_id in enumerate(inmate_ids):
            self.queues[number].put(
                (
                    side,
                    operation,
                    inmate_id,
                    f"{key_prefix}-c{number}",
                    start_at,
                    count_from,
                    end_at,
                )
            )
        done_in_all, cpu_in_all = 0, 0.0
        for _ in inmate_ids:
            number, done, cpu_seconds, failure = self.results.get()
            if failure:
                raise RuntimeError(f"client {number}, {side} {operation}: {failure}")
            done_in_all += done
            cpu_in_all += cpu_seconds
        return done_in_all, cpu_in_all

    def stop(self) -> None:
        for queue in self.queues:
            queue.put(None)
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


# --- set-up -------------------------------------------------------------------------------


def create_bench_data(run_id: str, inmates_wanted: int, *, suffix: str = ""):
    """A facility whose caps never run out, with ``inmates_wanted`` inmates, each with a
    depositor of its own (``bench_party``)."""
    from django.db import connection
    from django.test import override_settings

    from accounts.models import User
    from facilities import services as facility_services

    facility = facility_services.create_facility(
        code=f"bench-{run_id}{suffix}", name=f"Benchmark {run_id}{suffix}", deposit_fee_rate_bp=100
    )
    facility = facility_services.update_facility_caps(
        facility_id=facility.pk, monthly_cap_fen=CAP_FEN, balance_cap_fen=CAP_FEN
    )
    # The PIN hash is no part of what is measured; a cheap hasher keeps set-up short.
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        inmates = [
            facility_services.intake_inmate(
                facility=facility, inmate_number=f"B{number:05d}", surname="Bench", pin="1234"
            ).pk
            for number in range(inmates_wanted)
        ]
    User.objects.bulk_create(
        User(username=f"bench-depositor-{inmate_id}", email=f"bench-{inmate_id}@example.com")
        for inmate_id in inmates
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return facility, inmates


def add_ten_rules(facility) -> None:
    """Ten active monitoring rules at ``facility``, none of which a benchmark deposit fires:
    the five that look only at the deposit and the five that read the database (the month's
    period, and windows of the depositor's, the inmate's and the payer's deposits)."""
    from accounts.models import User
    from facilities.services import intake_inmate
    from monitoring import services as monitoring
    from monitoring.models import Rule
    from payments import payers

    watched = User.objects.create(username=f"bench-watched-{facility.code}")
    other_inmate = intake_inmate(
        facility=facility, inmate_number="WATCHED", surname="Watched", pin="1234"
    )
    kind = Rule.Kind
    rules = [
        Rule(kind=kind.MONITORED_DEPOSITOR, depositor=watched),
        Rule(kind=kind.MONITORED_INMATE, inmate=other_inmate),
        Rule(kind=kind.MONITORED_SOURCE, payer_fingerprint=payers.fingerprint("sandbox", "x")),
        Rule(kind=kind.AMOUNT_AT_LEAST, amount_fen=NEVER_FEN),
        Rule(kind=kind.NOT_WHOLE_YUAN),
        Rule(kind=kind.NEAR_MONTHLY_CAP, percent=1),
        Rule(kind=kind.DEPOSITS_FROM_DEPOSITOR, count=NEVER_COUNT, days=RULE_WINDOW_DAYS),
        Rule(kind=kind.DEPOSITORS_TO_INMATE, count=NEVER_COUNT, days=RULE_WINDOW_DAYS),
        Rule(kind=kind.INMATES_FROM_DEPOSITOR, count=NEVER_COUNT, days=RULE_WINDOW_DAYS),
        Rule(kind=kind.DEPOSITS_FROM_SOURCE, count=NEVER_COUNT, days=RULE_WINDOW_DAYS),
    ]
    for rule in rules:
        rule.facility = facility
        monitoring.save_rule(rule=rule, staff=None)


def seed(inmate_ids, run_id: str) -> None:
    from ledger import services as ledger_services

    for inmate_id in inmate_ids:
        depositor_id, _facility, _payer = bench_party(inmate_id)
        reserved = ledger_services.reserve_deposit(
            idempotency_scope=f"depositor:{depositor_id}",
            inmate_id=inmate_id,
            amount_fen=SEED_FEN,
            idempotency_key=f"bench-{run_id}-seed-{inmate_id}",
            depositor_id=depositor_id,
        )
        ledger_services.credit_deposit(deposit_id=reserved.pk)


class BaselineDrift(Exception):
    """The raw baseline no longer sends what the services send: its figures would compare the
    services with some other work."""


# A literal as psycopg writes it into a statement (a quoted string, with an optional cast, or
# a number): what differs between two runs of the same statement.
_LITERAL = re.compile(r"'(?:[^']|'')*'(?:::[a-z][a-z ]*)?|(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def statement_shape(sql: str) -> str:
    """A statement with its literals taken out and its white space collapsed."""
    return " ".join(_LITERAL.sub("?", sql).split())


def check_statements(
    check_inmates: dict, params: dict, run_id: str, *, show_sql: bool = False
) -> str:
    """Do one of each operation each way (on the two inmates ``check_inmates`` names for it;
    an operation it does not name is not checked) and compare what each side sent: the same
    statements (their literals taken out) in the same order, in as many transactions. Returns
    one line per operation; raises ``BaselineDrift``, with the first statement that differs,
    when the raw side no longer mirrors the services."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    raw = open_raw_ledger(params)
    lines, drifts = [], []
    try:
        for operation in (operation for operation in OPERATIONS if operation in check_inmates):
            inmate_ids = check_inmates[operation]
            for inmate_id in inmate_ids:
                bench_party(inmate_id)  # read before, as the warm-up reads it before a run
            with CaptureQueriesContext(connection) as captured:
                operation_for("services", operation, None)(inmate_ids[0], f"bench-{run_id}-check-s")
            # An ``ANALYZE`` after the commit is the once-per-doubling re-plan
            # (``commissary.db.replan_when_doubled``): it falls on whichever operation writes a
            # power-of-two id, on a fresh database early, so it is not part of an operation's
            # statements and the raw side does not mirror it.
            statements = [
                query["sql"] for query in captured if not query["sql"].startswith("ANALYZE ")
            ]
            commits = statements.count("COMMIT")
            statements = [sql for sql in statements if sql not in ("BEGIN", "COMMIT")]
            if show_sql:  # before the raw side runs, which may stop on a statement it lacks
                print(f"-- one of the {operation} through the services:")
                for sql in statements:
                    print(" ".join(sql.split()))
            raw.statements = raw.transactions = 0
            raw.recorded = []
            operation_for("raw", operation, raw)(inmate_ids[1], f"bench-{run_id}-check-r")
            raw_statements, raw.recorded = raw.recorded, None
            lines.append(
                f"{operation}: services {len(statements)} statements in {commits} "
                f"transactions, raw {len(raw_statements)} in {raw.transactions}"
            )
            services_shapes = [statement_shape(sql) for sql in statements]
            raw_shapes = [statement_shape(sql) for sql in raw_statements]
            if (services_shapes, commits) != (raw_shapes, raw.transactions):
                drifts.append(_first_difference(operation, services_shapes, raw_shapes))
    finally:
        raw.connection.close()
    if drifts:
        raise BaselineDrift(
            "\n".join([*lines, *drifts, "the raw baseline no longer mirrors the services"])
        )
    return "\n".join(lines)


def _first_difference(operation: str, services: list[str], raw: list[str]) -> str:
    for number, (ours, theirs) in enumerate(zip(services, raw, strict=False), start=1):
        if ours != theirs:
            return (
                f"{operation}: statement {number} differs\n  services: {ours}\n  raw:      {theirs}"
            )
    return f"{operation}: services send {len(services)} statements, raw {len(raw)}"


def server_settings() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'), "
            "current_setting('fsync'), current_setting('shared_buffers')"
        )
        version, synchronous_commit, fsync, shared_buffers = cursor.fetchone()
    return (
        f"PostgreSQL {version.split()[0]} (synchronous_commit {synchronous_commit}, "
        f"fsync {fsync}, shared_buffers {shared_buffers})"
    )


# --- the run ------------------------------------------------------------------------------


def measure_phase(clients: Clients, *, operation, inmates_by_side, key_prefix, seconds, rounds):
    """Operations per second each side reaches, and the client CPU milliseconds an operation
    took. The measurement is cut into ``rounds`` slices that alternate between the sides
    (which one goes first alternates too), so both see the same background load and the same
    table sizes, and each side runs ``seconds`` in all."""
    done = dict.fromkeys(SIDES, 0)
    cpu = dict.fromkeys(SIDES, 0.0)
    for round_number in range(rounds):
        for side in SIDES if round_number % 2 == 0 else SIDES[::-1]:
            slice_done, slice_cpu = clients.run(
                side=side,
                operation=operation,
                inmate_ids=inmates_by_side[side],
                key_prefix=f"{key_prefix}-{side}-{round_number}",
                seconds=seconds / rounds,
            )
            done[side] += slice_done
            cpu[side] += slice_cpu
    rates = {side: done[side] / seconds for side in SIDES}
    cpu_ms = {side: 1000 * cpu[side] / max(done[side], 1) for side in SIDES}
    return rates, cpu_ms


def measure_hot_inmate(clients: Clients, *, operation, inmate_id, key_prefix, seconds, rounds):
    """One inmate's operations per second through the services with one client and with
    HOT_CLIENTS clients all on it, in alternating slices as ``measure_phase`` does."""
    done = {1: 0, HOT_CLIENTS: 0}
    for round_number in range(rounds):
        order = (1, HOT_CLIENTS) if round_number % 2 == 0 else (HOT_CLIENTS, 1)
        for count in order:
            slice_done, _ = clients.run(
                side="services",
                operation=operation,
                inmate_ids=[inmate_id] * count,
                key_prefix=f"{key_prefix}-{count}-{round_number}",
                seconds=seconds / rounds,
                settle_seconds=HOT_SETTLE_SECONDS,
            )
            done[count] += slice_done
    return {count: done[count] / seconds for count in done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="how long each side runs in each phase (default 5)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="slices each phase is cut into, alternating services and raw (default 5)",
    )
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="clients set synchronous_commit off: measures CPU, not the disk's flush time",
    )
    parser.add_argument(
        "--show-sql", action="store_true", help="print the statements the services send"
    )
    args = parser.parse_args()
    database_url = benchmark_database_url()

    setup_django(database_url)
    from django.core.management import call_command
    from django.db import connection

    params = raw_connection_params()
    print(f"database {params['dbname']}: creating if missing, migrating", flush=True)
    ensure_database(params)
    call_command("migrate", verbosity=0)
    run_id = uuid.uuid4().hex[:8]
    # A fresh set of inmates for each side of each phase, plus two for the statement check
    # and one for each operation's phase of HOT_CLIENTS clients on one inmate.
    wanted = [
        (operation, label, side, 1 if shared else clients)
        for operation in OPERATIONS
        for label, clients, shared in PHASES
        for side in SIDES
    ]
    # The ruled deposits' inmates are at a facility of their own, with ten active rules.
    facility, inmates = create_bench_data(
        run_id,
        sum(count for operation, *_, count in wanted if operation != RULED)
        + 2
        + len(LEDGER_OPERATIONS),
    )
    ruled_facility, ruled_inmates = create_bench_data(
        run_id, sum(count for operation, *_, count in wanted if operation == RULED) + 2, suffix="r"
    )
    add_ten_rules(ruled_facility)
    check_inmates = {operation: inmates[:2] for operation in OPERATIONS}
    check_inmates[RULED] = ruled_inmates[:2]
    available, ruled_available = iter(inmates[2:]), iter(ruled_inmates[2:])
    hot_inmate = {operation: next(available) for operation in LEDGER_OPERATIONS}
    inmates_for = {}
    for operation, label, side, count in wanted:
        chosen = [next(ruled_available if operation == RULED else available) for _ in range(count)]
        # One inmate serves every client of its phase (1 client, or 8 on the hot inmate).
        inmates_for[operation, label, side] = chosen * CLIENTS if count == 1 else chosen
    purchasing = [i for (op, *_), ids in inmates_for.items() if op == "purchases" for i in ids]
    seed([*check_inmates["purchases"], hot_inmate["purchases"], *set(purchasing)], run_id)
    print(
        f"ledger throughput on {os.cpu_count()} CPUs, {server_settings()}; "
        f"each side runs {args.seconds:g} s a phase in {args.rounds} alternating slices"
        + ("; clients commit with synchronous_commit off" if args.async_commit else "")
    )
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"set-up: facility {facility.code}, {len(inmates)} inmates, no monitoring rule; facility "
        f"{ruled_facility.code}, {len(ruled_inmates)} inmates, 10 active rules"
    )
    try:
        print(check_statements(check_inmates, params, run_id, show_sql=args.show_sql))
    except BaselineDrift as drift:
        sys.exit(f"{drift}\nfix RawLedger in bench/ledger.py before measuring")
    connection.close()

    print(f"starting {CLIENTS} client processes", flush=True)
    clients = Clients(database_url, count=CLIENTS, is_commit_async=args.async_commit)
    results, client_cpu = {}, {}
    try:
        for operation in OPERATIONS:
            for label, client_count, _ in PHASES:
                phase = f"{operation}, {label}"
                rates, cpu_ms = measure_phase(
                    clients,
                    operation=operation,
                    inmates_by_side={
                        side: inmates_for[operation, label, side][:client_count] for side in SIDES
                    },
                    key_prefix=f"bench-{run_id}-{operation}-{len(results)}",
                    seconds=args.seconds,
                    rounds=args.rounds,
                )
                results[phase] = rates
                client_cpu[phase] = cpu_ms
                print(
                    f"{phase}: services {rates['services']:.1f}/s, raw {rates['raw']:.1f}/s, "
                    f"ratio {rates['services'] / rates['raw']:.2f}; client CPU an operation "
                    f"{cpu_ms['services']:.2f} ms services, {cpu_ms['raw']:.2f} ms raw",
                    flush=True,
                )
    finally:
        clients.stop()

    print(f"starting {HOT_CLIENTS} client processes for one inmate", flush=True)
    clients = Clients(database_url, count=HOT_CLIENTS, is_commit_async=args.async_commit)
    hot = {}
    try:
        for operation in LEDGER_OPERATIONS:
            hot[operation] = measure_hot_inmate(
                clients,
                operation=operation,
                inmate_id=hot_inmate[operation],
                key_prefix=f"bench-{run_id}-{operation}-hot",
                seconds=args.seconds,
                rounds=args.rounds,
            )
            print(
                f"{operation}, one inmate: 1 client {hot[operation][1]:.1f}/s, "
                f"{HOT_CLIENTS} clients {hot[operation][HOT_CLIENTS]:.1f}/s",
                flush=True,
            )
    finally:
        clients.stop()

    print()
    print(f"{'phase':<40}{'services/s':>12}{'raw/s':>10}{'ratio':>8}")
    for phase, rates in results.items():
        ratio = rates["services"] / rates["raw"]
        print(f"{phase:<40}{rates['services']:>12.1f}{rates['raw']:>10.1f}{ratio:>8.2f}")
    print()
    print(f"{'client CPU per operation':<40}{'services ms':>12}{'raw ms':>10}{'extra':>8}")
    for phase, cpu_ms in client_cpu.items():
        extra = cpu_ms["services"] - cpu_ms["raw"]
        print(f"{phase:<40}{cpu_ms['services']:>12.2f}{cpu_ms['raw']:>10.2f}{extra:>8.2f}")
    print()
    hot_label = f"{HOT_CLIENTS} clients/s"
    print(f"{'one inmate, services':<30}{'1 client/s':>12}{hot_label:>14}{'share':>8}")
    for operation, rates in hot.items():
        share = rates[HOT_CLIENTS] / rates[1]
        print(f"{operation:<30}{rates[1]:>12.1f}{rates[HOT_CLIENTS]:>14.1f}{share:>8.2f}")
    hot_share = min(rates[HOT_CLIENTS] / rates[1] for rates in hot.values())
    print(
        f"one inmate at {HOT_CLIENTS} clients / its 1-client rate: {hot_share:.2f} "
        f"(the lower of {' and '.join(hot)}; target {HOT_TARGET:g})"
    )
    print()
    print(f"{'deposits, 10 rules / no rule':<30}{'services':>12}{'raw':>10}")
    for label, *_ in PHASES:
        ruled, plain = results[f"{RULED}, {label}"], results[f"deposits, {label}"]
        print(
            f"{label:<30}{ruled['services'] / plain['services']:>12.2f}"
            f"{ruled['raw'] / plain['raw']:>10.2f}"
        )
    ruled_share = (
        results[f"{RULED}, 8 clients"]["services"] / results["deposits, 8 clients"]["services"]
    )
    print(
        f"deposits with 10 active rules / with none, services at 8 clients: {ruled_share:.2f} "
        "(goal: at least 0.90)"
    )
    at_eight = {
        operation: results[f"{operation}, 8 clients"]["services"]
        / results[f"{operation}, 8 clients"]["raw"]
        for operation in LEDGER_OPERATIONS
    }
    print()
    print(
        "8 clients on 8 inmates, the lower of "
        + " and ".join(f"{operation} {ratio:.2f}" for operation, ratio in at_eight.items())
        + f" (their mean is {statistics.mean(at_eight.values()):.2f}):"
    )
    print(f"services/raw at 8 clients: {min(at_eight.values()):.2f}")


if __name__ == "__main__":
    main()
