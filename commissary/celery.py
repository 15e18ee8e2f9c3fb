"""The Celery app. Broker: Redis when REDIS_URL is set, otherwise kombu's filesystem transport
under the data directory, so the embedded run needs no broker server. Tasks live in each app's
tasks.py; schedules live in the database (django-celery-beat).

The worker logs as the web does (settings.LOGGING: JSON or text, each line with its request
id): Celery's own log set-up, which would replace the root handler with its format, is skipped.
A task queued during a request runs under that request's id (django-guid's Celery integration
sends it in the task's headers); a task queued by the scheduler gets an id of its own."""

import logging.config
import os

from celery import Celery
from celery.signals import setup_logging
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")

app = Celery("commissary")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def log_as_the_web_does(**_kwargs) -> None:
    logging.config.dictConfig(settings.LOGGING)
