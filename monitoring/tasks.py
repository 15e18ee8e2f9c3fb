from celery import shared_task

from . import services


@shared_task(name="monitoring.tasks.refund_stale_holds")
def refund_stale_holds() -> int:
    """Refund holds nobody decided within their facility's deadline (daily)."""
    return services.refund_stale_holds()


@shared_task(name="monitoring.tasks.purge_monitoring_data")
def purge_monitoring_data() -> dict:
    """Delete monitoring data past its retention period (daily)."""
    return services.purge_monitoring_data()
