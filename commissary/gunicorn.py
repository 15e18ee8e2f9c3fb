"""gunicorn's settings for the site: ``gunicorn -c python:commissary.gunicorn commissary.wsgi``.

Its log lines follow ``LOG_FORMAT`` as the site's do (commissary.logs, docs/operations.md#logs):

- ``json``: its error log (start-up, workers booted or lost, tracebacks) and its access log
  (one line a request: method, path without the query string, status, duration, bytes, and the
  ``request_id`` the response answered in ``X-Request-ID``) through the site's own handler and
  JSON formatter, on standard error like every other line.
- ``text``: gunicorn's own lines, unchanged, with its access log on standard output, as a
  person at a terminal is used to.

A request's ids (``request_id`` and who and where, commissary.logs) end with it. The site ends
them when Django closes its response; when the application raised instead of answering (its
error page failed too), gunicorn answers 500 itself, Django closes nothing, and
``RequestEndingLogger`` ends them after gunicorn's access line for that answer, so the worker's
later lines ("Worker exiting", the next request's first lines) do not name that request.

Only logging is set here; the command line (or ``GUNICORN_CMD_ARGS``) gives the address, the
workers and the rest. The site's settings decide the format (``settings.LOG_FORMAT``), so gunicorn
and the app never disagree.
"""

import logging
import os

from django.conf import settings as _site
from gunicorn.glogging import Logger

from commissary import logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")

if _site.LOG_FORMAT == "json":
    logconfig_dict = logs.gunicorn_logging_config(_site.LOGGING)
    # The master's Python warnings as log lines too (the workers' follow the site's settings).
    logging.captureWarnings(True)
else:
    accesslog = "-"


class RequestEndingLogger(Logger):
    """gunicorn's logger (its ``logger_class`` setting) ending a request's log ids after the
    access line of an answer the site did not send: gunicorn's own 500 (its "Error handling
    request" traceback, written before, still carries them), or a response that failed before
    its headers went out. A response the site sent ends them as Django closes it, after this
    line, so what is logged while it closes keeps them."""

    def access(self, resp, req, environ, request_time):
        try:
            super().access(resp, req, environ, request_time)
        finally:
            if not getattr(resp, "headers_sent", False):
                logs.end_request()


logger_class = RequestEndingLogger
