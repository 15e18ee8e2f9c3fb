"""Celery tasks of the staff door: the daily digest, fanned out one task per staff member so
one person's failure (a mail server refusing an address) never stops the others'."""

from celery import shared_task

from . import digest


@shared_task(acks_late=True, reject_on_worker_lost=True)
def queue_staff_digests() -> int:
    """Queue one digest task per staff member who takes it; return how many were queued."""
    queued = 0
    for user_id in digest.digest_recipient_ids():
        send_staff_digest.delay(user_id=user_id)
        queued += 1
    return queued


@shared_task(acks_late=True, reject_on_worker_lost=True)
def send_staff_digest(user_id: int) -> bool:
    return digest.send_staff_digest(user_id=user_id)
