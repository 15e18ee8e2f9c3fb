"""Site-wide response and session policy for the signed-in pages.

- ``NoStoreForSignedInMiddleware``: a page answered to a signed-in person (a family's deposits,
  receipts and data export, every staff page) is never kept by a browser or a shared cache:
  ``Cache-Control: no-store, private``. The back button on a shared computer must not show the
  last family's money.
- ``StaffSessionTimeoutMiddleware``: a staff session ends after ``STAFF_IDLE_TIMEOUT_MINUTES``
  without a request and, however busy, ``STAFF_SESSION_MAX_HOURS`` after sign-in. Families keep
  Django's own session age; the kiosk API has its own sessions (``kiosk``).
- ``ContentSecurityPolicyMiddleware``: django-csp's middleware, with the policy every response
  gets unless a view changes it built once per process instead of once per response.
"""

import http.client
import time
from functools import cache

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.signals import setting_changed
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


# What django-csp's middleware reads from a response (its decorators) and a request (a nonce a
# template used): with none of them, a response gets the policy of the settings alone.
_POLICY_CHANGES = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
_CSP_SETTINGS = frozenset({"CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"})


@cache
def _settings_policy() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(header, policy, excluded path prefixes) of the enforced and the report-only policy, as
    django-csp builds them from the settings alone."""
    policies = []
    for header, setting, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
        policy = build_policy(report_only=report_only)
        policies.append((header, policy, tuple(prefixes)))
    return tuple(policies)


def _forget_settings_policy(*, setting, **kwargs) -> None:
    if setting in _CSP_SETTINGS:
        _settings_policy.cache_clear()


setting_changed.connect(_forget_settings_policy, dispatch_uid="commissary.middleware.csp")


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's ``CSPMiddleware``, answering the same headers. A response whose view changed
    nothing about the policy (no ``csp_*`` decorator) to a request that used no nonce gets the
    policy the settings give, built once per process (``_settings_policy``; rebuilt when a test
    overrides the settings): django-csp builds it again for every response, both policies,
    copying the settings each time, which cost about a tenth of the Python of a request with no
    template (bench/kiosk_profile.py). Every other response goes through django-csp's own
    ``process_response``."""

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _POLICY_CHANGES
        ):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (
            http.client.INTERNAL_SERVER_ERROR,
            http.client.NOT_FOUND,
        ):
            return response
        exempt = {
            HEADER: getattr(response, "_csp_exempt", False),
            HEADER_REPORT_ONLY: getattr(response, "_csp_exempt_ro", False),
        }
        for header, policy, prefixes in _settings_policy():
            if (
                policy
                and exempt[header] is False
                and header not in response
                and not request.path_info.startswith(prefixes)
            ):
                response[header] = policy
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
