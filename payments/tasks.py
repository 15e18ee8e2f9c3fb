"""Celery tasks of the payments app: thin, idempotent wrappers over ``payments.services``.
The services never import this module: they queue these tasks by name
(``payments.services.queueing``)."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def poll_pending_payments() -> int:
    """Ask providers about payments still pending, so a lost callback loses no money."""
    return services.poll_pending_payments()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def queue_unsent_receipts() -> int:
    """Queue ``send_receipt`` again for recent credited deposits whose receipt is unsent."""
    return services.queue_unsent_receipts().pk


# SMTP errors are OSErrors, as are the connection's (refused, reset, timed out, unknown host).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OSError,),
    retry_backoff=30,
    retry_backoff_max=60 * 60,
    retry_jitter=True,
    max_retries=10,
)
def send_receipt(payment_id: int) -> bool:
    """Email the receipt of a credited deposit, once however often it runs. A mail server that
    fails is tried again up to ten times, each wait a random part of 30 s, 1, 2, 4 … minutes
    (capped at an hour, so that receipts failed together do not return together): a few hours
    in all, after which the failure is in the worker's log and ``receipt_sent_at`` stays empty."""
    return services.send_receipt_once(payment_id=payment_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def make_provider_call(call_id: int) -> str | None:
    """Make one provider outbox call (a refund, a close, a query) after the decision committed.
    A failure is recorded on the row and retried by ``retry_provider_calls`` with backoff.
    Returns the row's state afterwards, or None when there was nothing to do."""
    call = services.make_provider_call(call_id=call_id)
    return call.state if call is not None else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def retry_provider_calls() -> int:
    """The outbox sweep (every minute): queue the provider calls whose next attempt is due."""
    return services.retry_due_provider_calls()
