"""The kiosk API's own, shorter middleware stack.

A kiosk request carries its own credentials (the device key and the inmate's session token in
headers) and never a cookie, so the middleware that serves people in browsers has nothing to do
for it: sessions, CSRF, the Django user, the audit trail's signed-in actor (the API writes no
audited model; its money is in the journal, with the kiosk's scope on every key), messages,
allauth's account redirects and django-axes' sign-in lock-out (the kiosk's PIN lock-out is the
API's own). Together they were about a tenth of an order's Python.

``KioskAPIMiddleware`` sits in ``MIDDLEWARE`` after what every response needs (security
headers, the Content-Security-Policy, the Permissions-Policy). Requests under ``/api/kiosk/``
leave the stack there and go through ``KIOSK_API_MIDDLEWARE`` (the language of names and
messages, content length, frame options) to the view; every other request goes on as before.
"""

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

API_PREFIX = "/api/kiosk/"


class _APIHandler(BaseHandler):
    """Resolves and calls the view behind its own middleware, built as Django builds
    ``MIDDLEWARE`` (request and response hooks, then view, template-response and exception
    hooks), synchronous only."""

    def __init__(self, middleware_paths):
        super().__init__()
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for path in reversed(middleware_paths):
            instance = import_string(path)(handler)
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


class KioskAPIMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        self.api = _APIHandler(settings.KIOSK_API_MIDDLEWARE)

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX):
            return self.api._middleware_chain(request)
        return self.get_response(request)
