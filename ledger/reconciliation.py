"""Reconciliation checks: does the journal agree with itself, the cached balances, the caps,
the periods and the deposits? Guards invariant 8 by reporting, never by fixing.

Each check is one independent set-based query over the whole ledger that returns findings
``(facility, subject, expected, actual)``; a clean ledger gives none. A new check (the provider's
settlements, say) plugs in as one more entry in ``CHECKS``.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.utils import timezone


@dataclass(frozen=True)
class Finding:
    check: str
    facility_id: int | None
    subject: str
    expected: int | str
    actual: int | str


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    sql: str
    subject: str  # what the second column names: "transaction", "account", "period", "deposit"


CHECKS = (
    Check(
        "transaction_unbalanced",
        "Every transaction's entries sum to zero, and every transaction has entries.",
        """
        SELECT t.facility_id, t.id, 0, COALESCE(SUM(e.amount_fen), 0)
        FROM ledger_transaction t LEFT JOIN ledger_entry e ON e.transaction_id = t.id
        GROUP BY t.id, t.facility_id
        HAVING COALESCE(SUM(e.amount_fen), 0) <> 0 OR COUNT(e.id) = 0
        """,
        "transaction",
    ),
    Check(
        "cached_balance_mismatch",
        "Each inmate account's cached balance equals the sum of its entries.",
        """
        SELECT a.facility_id, a.id, COALESCE(s.total, 0), a.balance_fen
        FROM ledger_account a
        LEFT JOIN (SELECT account_id, SUM(amount_fen) AS total FROM ledger_entry
                   GROUP BY account_id) s ON s.account_id = a.id
        WHERE a.balance_fen IS NOT NULL AND a.balance_fen <> COALESCE(s.total, 0)
        """,
        "account",
    ),
    Check(
        "spendable_out_of_bounds",
        "No spendable balance is negative, and spendable + pending is within the balance cap.",
        """
        SELECT a.facility_id, a.id, a.balance_cap_fen, a.balance_fen + a.pending_fen
        FROM ledger_account a
        WHERE a.kind = 'spendable'
          AND (a.balance_fen < 0 OR a.balance_fen + a.pending_fen > a.balance_cap_fen)
        """,
        "account",
    ),
    Check(
        "pending_mismatch",
        "Each spendable account's pending money equals its deposits awaiting payment.",
        """
        SELECT a.facility_id, a.id, COALESCE(d.total, 0), a.pending_fen
        FROM ledger_account a
        LEFT JOIN (SELECT inmate_id, SUM(amount_fen) AS total FROM ledger_deposit
                   WHERE status = 'created' GROUP BY inmate_id) d ON d.inmate_id = a.inmate_id
        WHERE a.kind = 'spendable' AND a.pending_fen <> COALESCE(d.total, 0)
        """,
        "account",
    ),
    Check(
        "period_received_mismatch",
        "Each period's received money equals its credited deposits.",
        """
        SELECT p.facility_id, p.id, COALESCE(d.total, 0), p.received_fen
        FROM ledger_monthlyperiod p
        LEFT JOIN (SELECT period_id, SUM(amount_fen) AS total FROM ledger_deposit
                   WHERE status = 'credited' GROUP BY period_id) d ON d.period_id = p.id
        WHERE p.received_fen <> COALESCE(d.total, 0)
        """,
        "period",
    ),
    Check(
        "period_reserved_mismatch",
        "Each period's reserved money equals its deposits awaiting payment.",
        """
        SELECT p.facility_id, p.id, COALESCE(d.total, 0), p.reserved_fen
        FROM ledger_monthlyperiod p
        LEFT JOIN (SELECT period_id, SUM(amount_fen) AS total FROM ledger_deposit
                   WHERE status = 'created' GROUP BY period_id) d ON d.period_id = p.id
        WHERE p.reserved_fen <> COALESCE(d.total, 0)
        """,
        "period",
    ),
    Check(
        "period_over_cap",
        "No period's received + reserved money exceeds its monthly cap.",
        """
        SELECT p.facility_id, p.id, p.cap_fen, p.received_fen + p.reserved_fen
        FROM ledger_monthlyperiod p
        WHERE p.received_fen + p.reserved_fen > p.cap_fen
        """,
        "period",
    ),
    Check(
        "credited_deposit_without_transaction",
        "Every credited deposit has its journal transaction, for its amount.",
        """
        SELECT d.facility_id, d.id, d.amount_fen,
               COALESCE(SUM(e.amount_fen) FILTER (WHERE a.inmate_id = d.inmate_id), 0)
        FROM ledger_deposit d
        LEFT JOIN ledger_transaction t ON t.deposit_id = d.id
        LEFT JOIN ledger_entry e ON e.transaction_id = t.id
        -- a join rather than a correlated IN (SELECT ... WHERE inmate_id = d.inmate_id),
        -- which ran once per entry and was most of a national-scale run
        LEFT JOIN ledger_account a ON a.id = e.account_id
        WHERE d.status = 'credited'
        GROUP BY d.id, d.facility_id, d.amount_fen
        HAVING COALESCE(SUM(e.amount_fen) FILTER (WHERE a.inmate_id = d.inmate_id), 0)
               <> d.amount_fen
        """,
        "deposit",
    ),
    Check(
        "reservation_outlived_expiry",
        "No deposit reservation outlives its expiry.",
        """
        SELECT d.facility_id, d.id, 'expired', d.status
        FROM ledger_deposit d
        WHERE d.status = 'created' AND d.expires_at < %(now)s
        """,
        "deposit",
    ),
)


def _plain(value):
    """PostgreSQL sums bigints as numeric; findings carry plain integers."""
    return int(value) if isinstance(value, Decimal) else value


def run_checks(*, now: dt.datetime | None = None, checks=CHECKS) -> list[Finding]:
    """Run every check; return all findings (an empty list for a clean ledger)."""
    now = now or timezone.now()
    findings = []
    with connection.cursor() as cursor:
        for check in checks:
            cursor.execute(check.sql, {"now": connection.ops.adapt_datetimefield_value(now)})
            findings += [
                Finding(
                    check.name,
                    facility_id,
                    f"{check.subject} {subject}",
                    _plain(expected),
                    _plain(actual),
                )
                for facility_id, subject, expected, actual in cursor.fetchall()
            ]
    return findings
