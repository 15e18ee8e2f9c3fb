"""Every write of the payments app, by what it does to the world: family deposits at a
provider and what the provider says about them (``deposits``), the provider outbox of calls
made after commit (``outbox``), and receipt emails (``receipts``). Callers keep
``from payments import services``."""

from .deposits import (
    LATE_REFUND_REASON,
    POLL_AFTER,
    POLL_UNTIL,
    OverDepositRoom,
    apply_provider_status,
    credit_held_payment,
    most_that_can_be_sent_message,
    poll_pending_payments,
    record_callback,
    refund_held_payment,
    start_deposit,
)
from .outbox import (
    make_provider_call,
    request_close,
    request_query,
    request_refund,
    retry_due_provider_calls,
    retry_provider_call_now,
)
from .receipts import (
    RECEIPT_SWEEP_AFTER,
    RECEIPT_SWEEP_UNTIL,
    queue_receipt,
    queue_unsent_receipts,
    send_receipt_once,
)

__all__ = [
    "LATE_REFUND_REASON",
    "POLL_AFTER",
    "POLL_UNTIL",
    "RECEIPT_SWEEP_AFTER",
    "RECEIPT_SWEEP_UNTIL",
    "OverDepositRoom",
    "apply_provider_status",
    "credit_held_payment",
    "make_provider_call",
    "most_that_can_be_sent_message",
    "poll_pending_payments",
    "queue_receipt",
    "queue_unsent_receipts",
    "record_callback",
    "refund_held_payment",
    "request_close",
    "request_query",
    "request_refund",
    "retry_due_provider_calls",
    "retry_provider_call_now",
    "send_receipt_once",
    "start_deposit",
]
