"""gunicorn's settings for the site: ``gunicorn -c python:commissary.gunicorn commissary.wsgi``.

Its log lines follow ``LOG_FORMAT`` as the site's do (commissary.logs, docs/operations.md#logs):

- ``json``: its error log (start-up, workers booted or lost, tracebacks) and its access log
  (one line a request: method, path without the query string, status, duration, bytes, and the
  ``request_id`` the response answered in ``X-Request-ID``) through the site's own handler and
  JSON formatter, on standard error like every other line.
- ``text``: gunicorn's own lines, unchanged, with its access log on standard output, as a
  person at a terminal is used to.

Only logging is set here; the command line (or ``GUNICORN_CMD_ARGS``) gives the address, the
workers and the rest. The site's settings decide the format (``settings.LOG_FORMAT``), so gunicorn
and the app never disagree.
"""

import logging
import os

from django.conf import settings as _site

from commissary.logs import gunicorn_logging_config

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")

if _site.LOG_FORMAT == "json":
    logconfig_dict = gunicorn_logging_config(_site.LOGGING)
    # The master's Python warnings as log lines too (the workers' follow the site's settings).
    logging.captureWarnings(True)
else:
    accesslog = "-"
