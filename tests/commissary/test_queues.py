"""Work on queues by kind (``settings.WORK_QUEUES``): money work, mail and reports each go to
their own queue, so machines can be given the work they suit (docs/operations.md), and a worker
started without -Q (the embedded run's) still consumes every queue."""

from django.conf import settings

from commissary.celery import app

MONEY = {
    "ledger.tasks.roll_over_periods",
    "ledger.tasks.reconcile_ledger",
    "ledger.tasks.expire_stale_deposits",
    "ledger.tasks.work_on_run",
    "payments.tasks.poll_pending_payments",
    "payments.tasks.make_provider_call",
    "payments.tasks.retry_provider_calls",
    "monitoring.tasks.refund_stale_holds",
}
MAIL = {
    "payments.tasks.send_receipt",
    "payments.tasks.queue_unsent_receipts",
    "ledger.notifications.email_approvers_of_request",
    "reports.tasks.queue_staff_digests",
    "reports.tasks.send_staff_digest",
}


def _queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_every_routed_task_exists_and_every_task_has_a_work_queue():
    app.loader.import_default_modules()
    registered = {name for name in app.tasks if not name.startswith("celery.")}
    assert set(settings.CELERY_TASK_ROUTES) == registered


def test_money_mail_and_reports_go_to_their_own_queues():
    queues = settings.WORK_QUEUES
    assert {_queue_of(name) for name in MONEY} == {queues["money"]}
    assert {_queue_of(name) for name in MAIL} == {queues["mail"]}
    assert _queue_of("ledger.tasks.generate_monthly_statements") == queues["reports"]
    assert len(set(queues.values()) | {settings.CELERY_TASK_DEFAULT_QUEUE}) == 4


def test_each_queue_is_bound_by_its_own_name_so_a_message_reaches_one_queue():
    """kombu binds a queue declared by name alone with the default queue's routing key: every
    queue would then get a copy of every message sent to the default queue."""
    names = [settings.CELERY_TASK_DEFAULT_QUEUE, *settings.WORK_QUEUES.values()]
    # The queues a worker started without -Q consumes: all four.
    assert [queue.name for queue in settings.CELERY_TASK_QUEUES] == names
    declared = app.amqp.queues  # (also any queue a test sent to by name)
    assert {name: declared[name].routing_key for name in names} == {name: name for name in names}
