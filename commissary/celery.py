"""The Celery app. Broker: Redis when REDIS_URL is set, otherwise kombu's filesystem transport
under the data directory, so the embedded run needs no broker server. Tasks live in each app's
tasks.py; schedules live in the database (django-celery-beat)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")

app = Celery("commissary")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
