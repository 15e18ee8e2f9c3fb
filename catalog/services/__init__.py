"""Every write to the commissary: orders placed from a kiosk, picked, delivered or cancelled.

Guards invariant 7 (a kiosk can only debit an inmate, for goods at the server's prices) and
keeps stock, spending limits and money moving together: ``place_order`` is one database
transaction that either commits the order, its stock, and its ledger debit, or changes nothing.

Lock order (the same everywhere, see ``ledger.locks``): the inmate's spendable and held account
rows first, then the order row (cancelling), then stock rows in primary-key order. Every order
of an inmate is written under its account lock, so the spending-limit sum read under that lock
cannot race another order of the same inmate; two inmates buying the last units meet on the
stock rows, always locked in one order, so they queue instead of deadlocking.
"""

from .checks import MAX_KEY_LENGTH, MAX_LINES_PER_ORDER, OrderLine, checked_key, checked_lines
from .fulfilment import cancel_order, mark_order_delivered, mark_order_picked
from .orders import place_order

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_LINES_PER_ORDER",
    "OrderLine",
    "cancel_order",
    "checked_key",
    "checked_lines",
    "mark_order_delivered",
    "mark_order_picked",
    "place_order",
]
