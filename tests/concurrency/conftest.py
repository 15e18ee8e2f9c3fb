"""Helpers for the race tests: start real threads behind a barrier so their statements collide
on PostgreSQL's row locks, and read an inmate's money back in one query.

Each thread opens its own database connection before the barrier (so the race is between
statements, not between connection set-ups) and closes it when done: the test database is
dropped at the end of the run, and it cannot be while a thread's connection is still open.
"""

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection


@dataclass(frozen=True)
class Outcome:
    """What one thread's call returned, or the exception it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


def _run_together(calls: Sequence[Callable[[], Any]], *, timeout: float = 60) -> list[Outcome]:
    barrier = threading.Barrier(len(calls))
    outcomes: list[Outcome | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=timeout)
            outcomes[index] = Outcome(value=call())
        except BaseException as error:  # reported to the test, which decides what was expected
            outcomes[index] = Outcome(error=error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(index, call), daemon=True)
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish in time"
    return outcomes


@pytest.fixture
def run_together():
    """``run_together([call, ...])`` runs each call in its own thread, all released at once by
    a barrier, and returns one ``Outcome`` per call, in the same order."""
    return _run_together


@dataclass(frozen=True)
class InmateMoney:
    spendable_fen: int
    held_fen: int
    pending_fen: int
    balance_cap_fen: int
    month_received_fen: int
    month_reserved_fen: int
    monthly_cap_fen: int | None
    deposits_created: int
    deposits_credited: int
    deposits_failed: int
    sales_fen: int

    @property
    def total_fen(self) -> int:
        """What counts against the balance cap."""
        return self.spendable_fen + self.held_fen + self.pending_fen


_MONEY_SQL = """
SELECT s.balance_fen, h.balance_fen, s.pending_fen, s.balance_cap_fen,
       COALESCE(p.received_fen, 0), COALESCE(p.reserved_fen, 0), p.cap_fen,
       (SELECT COUNT(*) FROM ledger_deposit d
         WHERE d.inmate_id = s.inmate_id AND d.status = 'created'),
       (SELECT COUNT(*) FROM ledger_deposit d
         WHERE d.inmate_id = s.inmate_id AND d.status = 'credited'),
       (SELECT COUNT(*) FROM ledger_deposit d
         WHERE d.inmate_id = s.inmate_id AND d.status = 'failed'),
       (SELECT COALESCE(SUM(e.amount_fen), 0) FROM ledger_entry e
          JOIN ledger_transaction t ON t.id = e.transaction_id
          JOIN ledger_account a ON a.id = e.account_id
         WHERE t.inmate_id = s.inmate_id AND a.kind = 'sales')
FROM ledger_account s
JOIN ledger_account h ON h.inmate_id = s.inmate_id AND h.kind = 'held'
LEFT JOIN ledger_monthlyperiod p ON p.inmate_id = s.inmate_id AND p.month = %s
WHERE s.inmate_id = %s AND s.kind = 'spendable'
"""


def _inmate_money(inmate, *, now: dt.datetime) -> InmateMoney:
    month = inmate.facility.local_month(now)
    with connection.cursor() as cursor:
        cursor.execute(_MONEY_SQL, [month, inmate.pk])
        return InmateMoney(*cursor.fetchone())


@pytest.fixture
def inmate_money():
    """``inmate_money(inmate, now=...)``: the inmate's balances, the period of ``now``'s month,
    its deposits by status and its purchases net of refunds, read in one query."""
    return _inmate_money
