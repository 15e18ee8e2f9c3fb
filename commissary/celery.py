"""The Celery app. Broker: Redis when REDIS_URL is set, otherwise kombu's filesystem transport
under the data directory, so the embedded run needs no broker server. Tasks live in each app's
tasks.py; schedules live in the database (django-celery-beat).

The worker logs as the web does (settings.LOGGING: JSON or text, each line with its request
id): Celery's own log set-up, which would replace the root handler with its format, is skipped.
A task queued during a request runs under that request's id (django-guid's Celery integration
sends it in the task's headers); a task queued by the scheduler gets an id of its own. The ids
bound to the request (who and where: ``user_id``, ``facility_id``, ``kiosk_id``, ``inmate_id``)
travel the same way, in a header of their own, and are bound again while the task runs. The lines
Celery writes about a task outside its run carry the ids its message was sent with: "Task …
received" as the message arrives, and every line Celery's handlers write in the worker's main
process (an expired or revoked task discarded, a time limit, a pool process lost under the task)
(``TaskRequest``, ``IdsOfTheTaskMessage``).

The invariant guarded besides: a worker's line never shows a task's arguments or result as
values. Tasks here take ids, but a worker's lines are safe whatever a task is given: only
integers, booleans and None are shown, every other value as ``<masked>``; keyword names stay
(``masked_repr``, ``TaskRequest``, ``TaskValuesMasked``).

Under ``LOG_FORMAT=json`` everything the worker writes is a JSON line: its start-up banner (text
Celery prints to standard output, not a log record) gives way to one log line saying the same
essentials, and the notices Celery writes straight to the terminal from its signal handlers
(``worker: Warm shutdown (MainProcess)``) are written as JSON lines instead.
"""

import contextlib
import contextvars
import itertools
import logging
import os
import sys
import weakref
from collections.abc import Iterator, Mapping, MutableMapping

import celery.apps.worker
from celery import Celery, Task
from celery.signals import (
    before_task_publish,
    celeryd_after_setup,
    celeryd_init,
    setup_logging,
    task_postrun,
    task_prerun,
    task_success,
)
from celery.utils.log import get_multiprocessing_logger
from celery.worker.consumer import consumer as celery_consumer
from celery.worker.request import Request
from django.conf import settings
from django_guid import get_guid, set_guid

from commissary import logs

# django-guid reads the settings as its config module is imported
# (``django_guid.config.settings``), so they must be named before it.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
from django_guid.config import settings as guid_settings  # noqa: E402

# The worker's requests for the task messages it holds, by task id, while they live: weak, and
# each dropped when Celery's handler for the end of its task returns, so nothing about a message
# is kept once its task is done.
_held_requests: weakref.WeakValueDictionary[str, Request] = weakref.WeakValueDictionary()

MASKED = "<masked>"
# Celery's own cap on an argument's text (``Task.argsrepr_maxsize``).
MASKED_REPR_MAX_LENGTH = 1024
_MASKED_REPR_MAX_DEPTH = 8
_MASKED_REPR_MAX_ITEMS = MASKED_REPR_MAX_LENGTH // 2


def masked_repr(value) -> str:
    """``repr(value)`` with every value but an integer, a boolean or None written ``<masked>``:
    lists and tuples element by element, a mapping's keys kept when they are names (an
    identifier, as a keyword argument's) or integers and its values masked in turn. What a
    worker's lines show of a task's arguments and result: ids stay, nothing else can."""
    text = _masked(value, depth=0)
    if len(text) > MASKED_REPR_MAX_LENGTH:
        return text[: MASKED_REPR_MAX_LENGTH - 3] + "..."
    return text


def _masked(value, *, depth: int) -> str:
    if value is None or isinstance(value, int):  # bool is an int
        return repr(value)
    if depth >= _MASKED_REPR_MAX_DEPTH:
        return MASKED
    if isinstance(value, (list, tuple)):
        # Enough items to fill the text (each takes at least two characters): the rest is cut.
        items = [_masked(item, depth=depth + 1) for item in value[:_MASKED_REPR_MAX_ITEMS]]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, Mapping):
        return (
            "{"
            + ", ".join(
                f"{_masked_key(key)}: {_masked(item, depth=depth + 1)}"
                for key, item in itertools.islice(value.items(), _MASKED_REPR_MAX_ITEMS)
            )
            + "}"
        )
    return MASKED


def _masked_key(key) -> str:
    if (isinstance(key, str) and key.isidentifier()) or isinstance(key, int):
        return repr(key)
    return MASKED


class TaskRequest(Request):
    """What a worker makes of a task message as it arrives, before logging "Task … received"
    (Celery's ``Task.Request``, its documented way to choose the class):

    - the message's ``argsrepr``/``kwargsrepr`` headers (the arguments' text Celery writes on
      its lines and events, which the sender may set to anything) are replaced by
      ``masked_repr`` of the arguments the message carries, before Celery reads them;
    - kept by task id while the worker holds the message, so ``IdsOfTheTaskMessage`` finds the
      message's headers for the lines Celery writes outside a handler ("received");
    - Celery's handlers for the task (Celery's documented way: a subclass overriding them) run
      with the ids the message was sent with bound, as the task itself does: every line they
      write (an expired task discarded, a time limit, the pool process lost, "Task handler
      raised error", a retry after the process was lost) carries them, and a message they queue
      again (a retry) is sent with them."""

    def __init__(self, message, *args, headers=None, body=None, decoded=False, **kwargs):
        sent_headers = message.headers if headers is None else headers
        # What Celery's own __init__ decodes (kombu caches the decoded payload).
        payload = (message.body if body is None else body) if decoded else message.payload
        try:
            task_args, task_kwargs = payload[0], payload[1]
        except (IndexError, KeyError, TypeError):
            task_args = task_kwargs = MASKED
        headers = {
            **sent_headers,
            # Written as a tuple, as Celery writes a task's arguments (JSON made it a list).
            "argsrepr": masked_repr(tuple(task_args) if isinstance(task_args, list) else task_args),
            "kwargsrepr": masked_repr(task_kwargs),
        }
        super().__init__(message, *args, headers=headers, body=body, decoded=decoded, **kwargs)
        _held_requests[self.id] = self

    @contextlib.contextmanager
    def _ids_of_the_message(self) -> Iterator[None]:
        sent_id = self.request_dict.get(guid_settings.guid_header_name)
        previous_id = get_guid()
        set_guid(sent_id if isinstance(sent_id, str) else None)
        token = logs.replace_context(sent_log_context(self.request_dict.get(LOG_CONTEXT_HEADER)))
        try:
            yield
        finally:
            logs.restore_context(token)
            set_guid(previous_id)

    def _done(self) -> None:
        _held_requests.pop(self.id, None)

    # Celery's subclass of this class (``create_request_cls``) replaces ``on_success`` and
    # ``execute_using_pool`` without calling them here: a failed run's ``on_success`` calls
    # ``on_failure``; a successful one writes no line, and its weak entry goes with the request
    # once Celery lets go of it.

    def revoked(self):
        with self._ids_of_the_message():
            discarded = super().revoked()
        if discarded:
            self._done()
        return discarded

    def on_accepted(self, pid, time_accepted):
        with self._ids_of_the_message():
            return super().on_accepted(pid, time_accepted)

    def on_timeout(self, soft, timeout):
        with self._ids_of_the_message():
            return super().on_timeout(soft, timeout)

    def on_retry(self, exc_info):
        with self._ids_of_the_message():
            return super().on_retry(exc_info)

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        try:
            with self._ids_of_the_message():
                return super().on_failure(
                    exc_info, send_failed_event=send_failed_event, return_ok=return_ok
                )
        finally:
            self._done()

    def terminate(self, pool, signal=None):
        with self._ids_of_the_message():
            return super().terminate(pool, signal=signal)

    def cancel(self, pool, signal=None, emit_retry=True):
        with self._ids_of_the_message():
            return super().cancel(pool, signal=signal, emit_retry=emit_retry)


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
    """A Celery line about a task written outside the task's run and outside the handlers
    ``TaskRequest`` binds the ids in gets the ids the message was sent with: the request id
    django-guid put in its headers and the ``LOG_CONTEXT_HEADER`` fields. Such a line names its
    task in its record, never only in its text: in ``data`` (``{"id": …, "name": …}``: "Task …
    received" as the message arrives), or among its arguments (the request itself, its
    ``info()``, or its id: the consumer's lines about the tasks it cancels after a lost
    connection, a remote-control "Terminating <id>"; the message's headers, for a task this
    worker does not know). No line needs its text read for the task's id. A line that has ids
    of its own (written while the task runs, or in a handler) keeps them. After
    ``LogContextFilter`` on the same handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        headers = _headers_of_the_message_named_by(record)
        if headers is None:
            return True
        sent_id = headers.get(guid_settings.guid_header_name)
        if getattr(record, "request_id", None) is None and isinstance(sent_id, str):
            record.request_id = sent_id
        for name, value in sent_log_context(headers.get(LOG_CONTEXT_HEADER)).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _headers_of_the_message_named_by(record: logging.LogRecord) -> Mapping | None:
    data = getattr(record, "data", None)
    if isinstance(data, Mapping):
        request = _held_requests.get(data.get("id"))
        return request.request_dict if request is not None else None
    # Only Celery's own lines: a task's line naming another task's id keeps its own ids.
    if not record.name.startswith("celery.") or not isinstance(record.args, tuple):
        return None
    if record.msg == celery_consumer.UNKNOWN_TASK_ERROR:
        headers = record.args[2] if len(record.args) > 2 else None
        return headers if isinstance(headers, Mapping) else None
    for argument in record.args:
        if isinstance(argument, Request):
            return argument.request_dict
        if isinstance(argument, Mapping):
            argument = argument.get("id")
        if isinstance(argument, str):
            request = _held_requests.get(argument)
            if request is not None:
                return request.request_dict
    return None


# The masked text of the result of the task that just succeeded in this process, by its id:
# set by ``mask_the_result`` (Celery's ``task_success``, sent before its "succeeded" line).
_masked_result: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "commissary_masked_task_result", default=None
)
# Celery's lines that write a message it cannot run as it came, by their text (the consumer's
# module constants): which of their arguments are the message's body (or all of it), and which
# its headers as a mapping (the sender's text of the arguments among them).
_RAW_MESSAGE_LINES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    celery_consumer.UNKNOWN_TASK_ERROR: ((1,), (2,)),
    celery_consumer.INVALID_TASK_ERROR: ((1,), ()),
    celery_consumer.UNKNOWN_FORMAT: ((0,), ()),
    # The headers there are text already.
    celery_consumer.MESSAGE_DECODE_ERROR: ((3, 4), ()),
}


class TaskValuesMasked(logging.Filter):
    """Celery's lines about a task show no argument or result as a value but integers (the
    invariant in the module's docstring). The arguments' text comes from the message's
    ``argsrepr``/``kwargsrepr``, which ``TaskRequest`` masked as it arrived. Left here: the
    result on the "succeeded" line (``data["return_value"]``, the text Celery made of it),
    replaced by the masked text of the result itself; and the lines about a message the worker
    cannot run (an unknown task, an invalid or undecodable message), which write its body as it
    came: the body becomes ``<masked>``, and so does the arguments' text among its headers."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, MutableMapping) and "return_value" in data:
            # ``data`` is also the record's argument: the message is written with it.
            result = _masked_result.get()
            data["return_value"] = (
                result[1] if result is not None and result[0] == data.get("id") else MASKED
            )
        raw = _RAW_MESSAGE_LINES.get(record.msg) if isinstance(record.msg, str) else None
        if raw is not None and isinstance(record.args, tuple):
            body_positions, header_positions = raw
            arguments = list(record.args)
            for position in body_positions:
                if position < len(arguments):
                    arguments[position] = MASKED
            for position in header_positions:
                if position < len(arguments):
                    arguments[position] = _headers_masked(arguments[position])
            record.args = tuple(arguments)
        return True


def _headers_masked(headers):
    if not isinstance(headers, Mapping):
        return MASKED
    return {
        name: MASKED if name in ("argsrepr", "kwargsrepr") else value
        for name, value in headers.items()
    }


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
        handler.addFilter(TaskValuesMasked())
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


@task_success.connect
def mask_the_result(sender=None, result=None, **_kwargs) -> None:
    """For Celery's "succeeded" line, written next in the same process (``TaskValuesMasked``)."""
    if sender is not None:
        _masked_result.set((sender.request.id, masked_repr(result)))


@task_postrun.connect
def forget_the_log_context(task=None, **_kwargs) -> None:
    _masked_result.set(None)
    # What was bound before the task (nothing, in a worker) is bound again; a task run in the
    # caller's process (``apply``) so leaves the caller's ids as they were.
    token = getattr(task.request, "log_context_token", None) if task is not None else None
    if token is not None:
        logs.restore_context(token)
