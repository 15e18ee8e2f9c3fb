"""Site-wide response and session policy for the signed-in pages.

- ``NoStoreForSignedInMiddleware``: a page answered to a signed-in person (a family's deposits,
  receipts and data export, every staff page) is never kept by a browser or a shared cache:
  ``Cache-Control: no-store, private``. The back button on a shared computer must not show the
  last family's money.
- ``StaffSessionTimeoutMiddleware``: a staff session ends after ``STAFF_IDLE_TIMEOUT_MINUTES``
  without a request and, however busy, ``STAFF_SESSION_MAX_HOURS`` after sign-in. Families keep
  Django's own session age; the kiosk API has its own sessions (``kiosk``).
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _

SIGNED_IN_AT = "staff_signed_in_at"
LAST_SEEN_AT = "staff_last_seen_at"
# The last-seen time is written back at most this often (seconds), so a busy staff page does
# not write its session row on every request; the idle timeout is exact to within this.
LAST_SEEN_RESOLUTION = 60


class NoStoreForSignedInMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, no_store=True, private=True)
        return response


class StaffSessionTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            expired = self._expired(request)
            if expired:
                logout(request)
                messages.info(request, expired)
                return redirect(f"{settings.STAFF_LOGIN_URL}?next={request.path}")
        return self.get_response(request)

    @staticmethod
    def _expired(request) -> str | None:
        """Why the staff session has ended, or None; stamps the session while it lives."""
        now = int(time.time())
        session = request.session
        signed_in_at = session.setdefault(SIGNED_IN_AT, now)
        last_seen_at = session.get(LAST_SEEN_AT, now)
        if now - last_seen_at > settings.STAFF_IDLE_TIMEOUT_MINUTES * 60:
            return _("You were signed out after a while without activity. Please sign in again.")
        if now - signed_in_at > settings.STAFF_SESSION_MAX_HOURS * 3600:
            return _("Staff sessions last a working shift at most. Please sign in again.")
        if now - last_seen_at >= LAST_SEEN_RESOLUTION or LAST_SEEN_AT not in session:
            session[LAST_SEEN_AT] = now
        return None
