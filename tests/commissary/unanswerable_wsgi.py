"""The site's WSGI application with tests.commissary.unanswerable_urls as its URLs, for a real
gunicorn to serve (``gunicorn … tests.commissary.unanswerable_wsgi``)."""

from django.test.utils import override_settings

from commissary.wsgi import application

override_settings(ROOT_URLCONF="tests.commissary.unanswerable_urls").enable()

__all__ = ["application"]
