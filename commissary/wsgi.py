"""WSGI entry point (gunicorn commissary.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
application = get_wsgi_application()
