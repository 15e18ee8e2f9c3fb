"""The Celery app. Broker: Redis when REDIS_URL is set, otherwise kombu's filesystem transport
under the data directory, so the embedded run needs no broker server. Tasks live in each app's
tasks.py; schedules live in the database (django-celery-beat).

The worker logs as the web does (settings.LOGGING: JSON or text, each line with its request
id): Celery's own log set-up, which would replace the root handler with its format, is skipped.
A task queued during a request runs under that request's id (django-guid's Celery integration
sends it in the task's headers); a task queued by the scheduler gets an id of its own. The ids
bound to the request (who and where: ``user_id``, ``facility_id``, ``kiosk_id``, ``inmate_id``)
travel the same way, in a header of their own, and are bound again while the task runs. The lines
Celery writes about a task outside its run, "Task … received" first, carry the ids its message
was sent with (``TaskRequest``, ``IdsOfTheTaskMessage``).

Under ``LOG_FORMAT=json`` everything the worker writes is a JSON line: its start-up banner (text
Celery prints to standard output, not a log record) gives way to one log line saying the same
essentials, and the notices Celery writes straight to the terminal from its signal handlers
(``worker: Warm shutdown (MainProcess)``) are written as JSON lines instead.
"""

import contextlib
import logging
import os
import sys
import weakref
from collections.abc import Mapping

import celery.apps.worker
from celery import Celery, Task
from celery.signals import (
    before_task_publish,
    celeryd_after_setup,
    celeryd_init,
    setup_logging,
    task_postrun,
    task_prerun,
)
from celery.utils.log import get_multiprocessing_logger
from celery.worker.request import Request
from django.conf import settings
from django_guid.config import settings as guid_settings

from commissary import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")

# The worker's requests for the task messages it holds, by task id, while they live.
_held_requests: weakref.WeakValueDictionary[str, Request] = weakref.WeakValueDictionary()


class TaskRequest(Request):
    """What a worker makes of a task message as it arrives, before logging "Task … received"
    (Celery's ``Task.Request``, its documented way to choose the class): kept by task id while
    the worker holds the message, so ``IdsOfTheTaskMessage`` finds the message's headers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _held_requests[self.id] = self


class CommissaryTask(Task):
    """Every task's base (``Celery(task_cls=…)``): a plain task whose worker requests are
    ``TaskRequest``."""

    Request = TaskRequest


app = Celery("commissary", task_cls=CommissaryTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

LOG_CONTEXT_HEADER = "commissary_log_context"
worker_log = logging.getLogger("commissary.worker")


class IdsOfTheTaskMessage(logging.Filter):
    """Celery's lines about a task name it in their record's ``data`` (``{"id": …, "name": …}``:
    "received", "succeeded", "raised", "retry"). One written outside the task's run ("Task …
    received", as the message arrives) has no ids of its own: it gets the ids the message was
    sent with, the request id django-guid put in its headers and the ``LOG_CONTEXT_HEADER``
    fields. A line written while the task runs has them already (the same, or an id of its
    own when none was sent) and keeps them. After ``LogContextFilter`` on the same handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        request = _held_requests.get(data.get("id")) if isinstance(data, Mapping) else None
        if request is None:
            return True
        headers = request.request_dict
        sent_id = headers.get(guid_settings.guid_header_name)
        if getattr(record, "request_id", None) is None and isinstance(sent_id, str):
            record.request_id = sent_id
        for name, value in sent_log_context(headers.get(LOG_CONTEXT_HEADER)).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def sent_log_context(sent) -> dict[str, int]:
    """The log context fields a task's ``LOG_CONTEXT_HEADER`` carries: known names with
    integer values only, whoever wrote the message."""
    return {
        name: value
        for name, value in (sent.items() if isinstance(sent, Mapping) else ())
        if name in logs.CONTEXT_FIELDS and isinstance(value, int)
    }


@setup_logging.connect
def log_as_the_web_does(**_kwargs) -> None:
    logs.configure(settings.LOGGING)
    # Celery's processes only: a worker logs its lines about the task messages it holds.
    for handler in logging.getLogger().handlers:
        handler.addFilter(IdsOfTheTaskMessage())
    # The prefork pool's own logger (billiard's, "multiprocessing": a pool process that exited
    # unexpectedly) propagates nowhere and has no handler until Celery's log set-up, skipped
    # here, gives it one: its lines would reach standard error as bare text. Through the root
    # instead, at the level Celery gives it.
    pool_logger = get_multiprocessing_logger()
    if pool_logger is not None:
        pool_logger.propagate = True
        pool_logger.setLevel(logging.ERROR)
    if settings.LOG_FORMAT == "json":
        # Celery's own terminal notices (shutdown, Ctrl-C) as JSON lines: Celery looks the
        # function up by name each time, so this replaces every one of them.
        celery.apps.worker.safe_say = say_as_json


def say_as_json(msg: str, _stream=None) -> None:
    """Celery's ``safe_say`` (called from its signal handlers) writing a JSON line: formatted
    without the logging module's handlers and their locks, which the interrupted code may hold,
    and written with one ``os.write`` as Celery's own notice is."""
    record = logging.LogRecord(
        name="celery.apps.worker",
        level=logging.WARNING,
        pathname=__file__,
        lineno=0,
        msg=msg,
        args=None,
        exc_info=None,
    )
    logs.LogContextFilter().filter(record)
    line = logs.JsonFormatter().format(record) + "\n"
    # On standard error with every other line, wherever Celery meant it to go.
    # As Celery's own: a notice lost is no failure.
    with contextlib.suppress(AttributeError, OSError, ValueError):
        os.write(sys.__stderr__.fileno(), line.encode())


@celeryd_init.connect
def leave_out_the_text_banner(instance=None, **_kwargs) -> None:
    """Under JSON the banner (text on standard output) is left out, as ``--quiet`` does; the
    line ``describe_the_worker`` logs says what an operator reads it for."""
    if settings.LOG_FORMAT == "json" and instance is not None:
        instance.quiet = True


@celeryd_after_setup.connect
def describe_the_worker(sender=None, instance=None, **_kwargs) -> None:
    """Under JSON, in place of the banner: the worker's name, queues and concurrency."""
    if settings.LOG_FORMAT != "json" or instance is None:
        return
    worker_log.info(
        "worker %s starting: queues %s, concurrency %s",
        sender,
        ",".join(sorted(instance.app.amqp.queues.consume_from or ())),
        instance.concurrency,
    )


@before_task_publish.connect
def send_the_log_context(headers=None, **_kwargs) -> None:
    """The ids bound where the task is queued (a request, or a task) go with it."""
    context = logs.current_context()
    if context and headers is not None:
        headers[LOG_CONTEXT_HEADER] = dict(context)


@task_prerun.connect
def bind_the_sent_log_context(task=None, **_kwargs) -> None:
    """The task runs with exactly the ids it was sent with (none from an earlier task)."""
    if task is None:
        return
    # A worker finds the message's headers on the request itself; a task run in the caller's
    # process (``apply``, eager) under ``request.headers``.
    sent = task.request.get(LOG_CONTEXT_HEADER)
    if sent is None and isinstance(task.request.headers, dict):
        sent = task.request.headers.get(LOG_CONTEXT_HEADER)
    task.request.log_context_token = logs.replace_context(sent_log_context(sent))


@task_postrun.connect
def forget_the_log_context(task=None, **_kwargs) -> None:
    # What was bound before the task (nothing, in a worker) is bound again; a task run in the
    # caller's process (``apply``) so leaves the caller's ids as they were.
    token = getattr(task.request, "log_context_token", None) if task is not None else None
    if token is not None:
        logs.restore_context(token)
