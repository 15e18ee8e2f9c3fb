from celery import shared_task

from . import services


@shared_task(name="monitoring.tasks.refund_stale_holds")
def refund_stale_holds() -> int:
    """Refund holds nobody decided within their facility's deadline (daily)."""
    return services.refund_stale_holds()
