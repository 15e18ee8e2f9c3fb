"""Celery tasks of the payments app: thin, idempotent wrappers over ``payments.services``."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, reject_on_worker_lost=True)
def poll_pending_payments() -> int:
    """Ask providers about payments still pending, so a lost callback loses no money."""
    return services.poll_pending_payments()
