"""Browser middleware that the kiosk API skips.

A kiosk request carries its own credentials (the device key and the inmate's session token in
headers) and never a cookie, so the middleware that serves people in browsers has nothing to do
for it: sessions, CSRF, the Django user, the audit trail's signed-in actor (the API writes no
audited model; its money is in the journal, with the kiosk's scope on every key), messages,
allauth's account redirects and django-axes' sign-in lock-out (the kiosk's PIN lock-out is the
API's own). Passing them by saves 0.11-0.20 ms of CPU a kiosk request (``bench/
kiosk_middleware.py``, 2026-12-05 on a loaded two-core machine: 443-503 us with these
subclasses, 610-647 us with the same middleware listed by their own names; the private
handler chain this replaced, 487 us), against 3.5-3.9 ms for a whole order in process
(``bench/kiosk_profile.py``), where the difference was lost in the machine's noise.

Sessions, the user, the audit actor and messages are listed in ``MIDDLEWARE`` as the
subclasses below (``browser_only``), which pass requests under ``/api/kiosk/`` straight on.
CSRF keeps its own name (``check --deploy`` looks for it there); the API's views are exempt
from it, as every DRF view without session authentication is.
Everything else runs for the API as for any page, in the order ``MIDDLEWARE`` gives: security
headers, the Content-Security-Policy, the Permissions-Policy, the language, content length,
frame options, and allauth's and axes' middleware, which cost next to nothing on a request
that is not theirs and must be listed by their own names (allauth refuses to start otherwise).
Only Django's documented middleware interface is used (a class taking ``get_response``, and the
``process_view``, ``process_exception`` and ``process_template_response`` hooks); an earlier
version rebuilt Django's handler chain from its private attributes, which an upgrade could
break without a word.
"""

from django.utils.module_loading import import_string

API_PREFIX = "/api/kiosk/"

HOOKS = ("process_view", "process_exception", "process_template_response")


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _passed_by_for_api(middleware_class, name: str):
    """``middleware_class``'s hook ``name``, doing nothing for a kiosk API request."""

    def hook(self, request, *args):
        if is_api_request(request):
            return args[-1] if name == "process_template_response" else None
        return getattr(middleware_class, name)(self, request, *args)

    hook.__name__ = name
    return hook


def browser_only(middleware_path: str) -> type:
    """A subclass of the middleware at ``middleware_path`` (so checks that look for it, such as
    the admin's, still find it) whose ``__call__`` and hooks pass kiosk API requests straight
    on. Synchronous, as the site is served (WSGI)."""
    middleware_class = import_string(middleware_path)

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return middleware_class.__call__(self, request)

    namespace = {
        "__module__": __name__,
        "__doc__": f"{middleware_path}, passed by for the kiosk API.",
        "__call__": __call__,
        "sync_capable": True,
        "async_capable": False,
    }
    for name in HOOKS:
        if hasattr(middleware_class, name):
            namespace[name] = _passed_by_for_api(middleware_class, name)
    return type(middleware_class.__name__, (middleware_class,), namespace)


SessionMiddleware = browser_only("django.contrib.sessions.middleware.SessionMiddleware")
AuthenticationMiddleware = browser_only("django.contrib.auth.middleware.AuthenticationMiddleware")
AuditlogMiddleware = browser_only("auditlog.middleware.AuditlogMiddleware")
MessageMiddleware = browser_only("django.contrib.messages.middleware.MessageMiddleware")
