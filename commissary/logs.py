"""Log lines an operator can follow: one JSON object a line (``LOG_FORMAT=json``, production's
default) or readable text (``LOG_FORMAT=text``, under DEBUG and ``scripts/run``), each carrying
the id of the web request or Celery task it was written for, and who and which facility when
known. The invariant guarded: no PIN, password, key, card token or session token reaches a log.

The request id is django-guid's (``settings.DJANGO_GUID``): its middleware takes a well-formed
incoming ``X-Request-ID`` or makes one, answers it in the response's ``X-Request-ID``, and its
Celery integration puts it into the headers of every task queued while it is set, so the worker
runs the task under the same id. python-json-logger writes the JSON. What is left here:

- ``RequestIdMiddleware`` in front of django-guid's: an incoming id is used only when it is a
  UUID written the usual way (32 hex digits, or 36 with the four hyphens). django-guid's own
  check is ``uuid.UUID()``, which also takes braces, ``urn:uuid:`` and any number of hyphens,
  and then keeps the client's text as it came.
- ``bind``: who the request is for (``user_id``; ``facility_id``, ``kiosk_id`` and, once signed
  in, ``inmate_id`` on the kiosk API, bound by its authentication), in a context variable
  ``LogContextMiddleware`` empties at the start of each request and ``end_request`` when its
  response is closed (or, under gunicorn, once gunicorn answered a request the site could not;
  commissary.gunicorn).
- ``LogContextFilter`` copies the request id and that context onto every record, and
  ``JsonFormatter`` names the fields and drops any field whose name says it is a secret.
- ``current_context``, ``replace_context`` and ``restore_context``: what ``commissary.celery``
  sends in a task's headers and binds while the task runs, so a task queued by a request logs
  that request's ids, and a task after it none.
- ``gunicorn_logging_config``: the same lines from gunicorn (``commissary.gunicorn``), its
  access line as fields (``GunicornFields``) under the request id the response answered.
- ``configure`` (``LOGGING_CONFIG``): under JSON, Python's warnings become log lines too.
"""

import contextvars
import copy
import datetime as dt
import logging
import logging.config
import re
from collections.abc import Mapping
from types import MappingProxyType

from django_guid import clear_guid, get_guid
from pythonjsonlogger.json import JsonFormatter as LibraryJsonFormatter

REQUEST_ID_META_KEY = "HTTP_X_REQUEST_ID"
WELL_FORMED_REQUEST_ID = re.compile(
    r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
# Fields a record may carry (``extra=``) that must never be written: a record naming one loses
# the field whatever its value (a harmless field caught by a wide pattern is lost too: the
# cheaper mistake).
SECRET_FIELD = re.compile(
    r"pin|passw|secret|token|key|card|authori[sz]ation|cookie|session|signature", re.IGNORECASE
)
# Fields libraries attach that would write more than the line needs: Django's request logger
# attaches the request, whose text includes the query string.
DROPPED_FIELDS = frozenset({"request"})
CONTEXT_FIELDS = ("user_id", "facility_id", "kiosk_id", "inmate_id")

# Never changed in place (``bind`` sets a new mapping): a context copied into another thread
# or task keeps what it had.
EMPTY_CONTEXT: Mapping[str, int] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, int]] = contextvars.ContextVar(
    "commissary_log_context", default=EMPTY_CONTEXT
)


def bind(**fields: int | None) -> None:
    """Adds who and where to the rest of this request's log lines (``user_id``,
    ``facility_id``, ``kiosk_id``, ``inmate_id``): ids only, never names or credentials."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {sorted(unknown)}")
    known = {name: value for name, value in fields.items() if value is not None}
    _context.set({**_context.get(), **known})


def current_context() -> Mapping[str, int]:
    """What was bound so far (never changed in place, so safe to keep or send)."""
    return _context.get()


def replace_context(fields: Mapping[str, int]) -> contextvars.Token:
    """Binds exactly ``fields`` (a Celery task's, as it was sent) until ``restore_context``
    with the token returned puts back what was bound before."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"not a log context field: {sorted(unknown)}")
    return _context.set(MappingProxyType(dict(fields)))


def restore_context(token: contextvars.Token) -> None:
    _context.reset(token)


def clear_context() -> None:
    """Forgets what was bound."""
    _context.set(EMPTY_CONTEXT)


def end_request(**_signal_arguments) -> None:
    """When a response is closed (``request_finished``, connected in
    ``CommissaryConfig.ready``): the request's context and id end, so nothing the thread logs
    or queues afterwards claims them. This is after Django's ``django.request`` logger has
    written the line of a 4xx or 5xx answer, which so carries both."""
    clear_context()
    clear_guid()


class RequestIdMiddleware:
    """Drops an incoming ``X-Request-ID`` that is not a plain UUID, before django-guid's
    middleware (next in ``MIDDLEWARE``) reads it, so that one is generated instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get(REQUEST_ID_META_KEY)
        if incoming is not None and not WELL_FORMED_REQUEST_ID.fullmatch(incoming):
            del request.META[REQUEST_ID_META_KEY]
        return self.get_response(request)


class LogContextMiddleware:
    """Starts the request's log context afresh and binds the signed-in user's id (after Django's
    authentication middleware; the kiosk API binds its device and facility itself)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        clear_context()
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            bind(user_id=user.pk)
        return self.get_response(request)


class LogContextFilter(logging.Filter):
    """Puts ``request_id`` (None outside a request or task) and the bound context on every
    record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = get_guid()
        for name, value in _context.get().items():
            setattr(record, name, value)
        return True


class JsonFormatter(LibraryJsonFormatter):
    """``{"time", "level", "logger", "message", "request_id", ...}``: the context fields and
    any ``extra=`` fields follow, except those named like secrets (``SECRET_FIELD``)."""

    def __init__(self, **options):
        super().__init__(
            ["asctime", "levelname", "name", "message", "request_id"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
            **options,
        )

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging.Formatter's name
        """ISO 8601 in UTC to the millisecond, whatever the machine's zone."""
        return dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
            timespec="milliseconds"
        )

    def process_log_record(self, log_data):
        return {
            name: value
            for name, value in log_data.items()
            if name not in DROPPED_FIELDS
            and not (SECRET_FIELD.search(name) and name not in CONTEXT_FIELDS)
        }


class GunicornFields(logging.Filter):
    """gunicorn's lines as the site writes them. Its access line becomes fields: ``method``,
    ``path`` (without the query string, which may carry a token), ``status``, ``duration_ms``,
    ``response_bytes``, ``remote_addr``, and the ``request_id`` the response answered in
    ``X-Request-ID`` (django-guid's), the request's own even after its context has ended; its
    message is ``GET /path 200``. gunicorn passes the access line's values ("atoms") as the
    record's arguments (``gunicorn.glogging.Logger.access``), headers and all; none is written
    but those. Its other lines lose the query string of a request they name ("Error handling
    request /path?…"). After ``LogContextFilter`` on the same handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            self._access(record, record.args)
        elif isinstance(record.args, tuple):
            record.args = tuple(_without_query_string(value) for value in record.args)
        return True

    def _access(self, record: logging.LogRecord, atoms: Mapping) -> None:
        record.method = atoms.get("m")
        # PATH_INFO; a request gunicorn answered itself (an error) may have only its raw URI.
        record.path = atoms.get("U") or _without_query_string(atoms.get("{raw_uri}e"))
        status = str(atoms.get("s", ""))
        record.status = int(status) if status.isdigit() else status
        microseconds = atoms.get("D")
        record.duration_ms = round(microseconds / 1000, 3) if microseconds is not None else None
        record.response_bytes = atoms.get("B")
        record.remote_addr = atoms.get("h")
        answered = atoms.get("{x-request-id}o")
        if answered:
            record.request_id = answered
        record.msg = "%s %s %s"
        record.args = (record.method, record.path, record.status)


def _without_query_string(value):
    if isinstance(value, str) and value.startswith("/"):
        return value.partition("?")[0]
    return value


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def logging_config(*, log_format: str, level: str) -> dict:
    """``LOGGING`` for settings: every line through one console handler that adds the request
    id and context, in JSON or text."""
    if log_format not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "commissary.logs.LogContextFilter"}},
        "formatters": {
            "json": {"()": "commissary.logs.JsonFormatter"},
            "text": {"format": TEXT_FORMAT},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["context"],
                "formatter": log_format,
            }
        },
        "root": {"handlers": ["console"], "level": level},
        # django-guid says at INFO how it found or made each id, and for every task sent.
        "loggers": {"django_guid": {"level": "WARNING"}},
    }


def gunicorn_logging_config(site_logging: dict) -> dict:
    """gunicorn's ``logconfig_dict`` for ``LOG_FORMAT=json``: the site's ``LOGGING`` (the same
    stream, filter and formatter), with gunicorn's error and access logs on a handler of its
    own that adds ``GunicornFields``. Neither propagates to the root, which would write the
    line twice."""
    config = copy.deepcopy(site_logging)
    config["filters"]["gunicorn"] = {"()": "commissary.logs.GunicornFields"}
    config["handlers"]["gunicorn"] = {
        **config["handlers"]["console"],
        "filters": [*config["handlers"]["console"]["filters"], "gunicorn"],
    }
    # No level: gunicorn's own (--log-level for the error log, INFO for access) stays.
    for name in ("gunicorn.error", "gunicorn.access"):
        config["loggers"][name] = {"handlers": ["gunicorn"], "propagate": False}
    return config


def configure(logging_settings: dict) -> None:
    """``settings.LOGGING_CONFIG``, also what the Celery worker runs: ``dictConfig``, and under
    ``LOG_FORMAT=json`` Python's warnings (a library's ``UserWarning``, a deprecation) as log
    records (logger ``py.warnings``) instead of text on standard error. Under text they stay
    as Python prints them."""
    from django.conf import settings  # noqa: PLC0415 - settings imports this module

    logging.config.dictConfig(logging_settings)
    logging.captureWarnings(settings.LOG_FORMAT == "json")
