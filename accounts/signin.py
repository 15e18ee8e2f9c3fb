"""Sign-in glue between django-allauth (family sign-in by email) and django-axes (lockout).

Axes locks by username and address together; this tells it which username an attempt was
for, whichever form sent it: the admin's login form posts ``username``, allauth's ``login``
(and authenticates with ``email``). Lower-cased so case games cannot dodge the count.
"""


def username_of_attempt(request, credentials) -> str | None:
    for source in (credentials or {}, getattr(request, "POST", {}) or {}):
        for field in ("username", "email", "login"):
            value = source.get(field)
            if value:
                return str(value).strip().lower()
    return None
