"""The Django project package: settings, root URLs, the Celery app, WSGI/ASGI. No business logic."""

from .celery import app as celery_app

__all__ = ("celery_app",)
