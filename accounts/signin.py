"""Sign-in glue between django-allauth (family sign-in by email) and django-axes (lockout).

Axes locks by username and address together; this tells it which username an attempt was
for, whichever form sent it: the admin's login form posts ``username``, allauth's ``login``
(and authenticates with ``email``). Lower-cased so case games cannot dodge the count.

The admin's sign-in is also limited per address (``admin_login``), as allauth limits the
family sign-in per address.
"""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render
from django.utils.translation import gettext as _
from django_ratelimit.core import get_usage, is_ratelimited


def username_of_attempt(request, credentials) -> str | None:
    for source in (credentials or {}, getattr(request, "POST", {}) or {}):
        for field in ("username", "email", "login"):
            value = source.get(field)
            if value:
                return str(value).strip().lower()
    return None


def _failures_per_address(group, request) -> str:
    return settings.ADMIN_SIGN_IN_FAILURES_PER_ADDRESS


def admin_login(request, extra_context=None):
    """The admin's sign-in with a limit per address on top of django-axes' lockout per
    username and address: one address trying many usernames (30 in a row were accepted before)
    is refused for a while, while a staff member signing in from elsewhere is not affected."""
    failures = get_usage(
        request, group="admin-sign-in", key="ip", rate=_failures_per_address, increment=False
    )
    if request.method == "POST" and failures["count"] >= failures["limit"]:
        return render(
            request,
            "admin/sign_in_limited.html",
            {**admin.site.each_context(request), "title": _("Too many sign-in attempts")},
            status=429,
        )
    response = admin.site.login(request, extra_context)
    if request.method == "POST" and not response.has_header("Location"):
        # A failed attempt (the form again, or the lockout page): counted for the address.
        is_ratelimited(
            request, group="admin-sign-in", key="ip", rate=_failures_per_address, increment=True
        )
    return response
