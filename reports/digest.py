"""The daily digest: one email a staff member, of what waits at their facilities (the same
queues as their admin home, ``reports.work_queue``), in their own language when they chose one
(``User.language``), else the site's. Nothing is sent when nothing waits, nor to anyone who
switched it off (``User.receives_digest``), has no email address, or is no longer active
staff. A person gets at most one digest a day (the system timezone's day), even when the
fan-out runs twice or a task is delivered again."""

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import ngettext

from facilities.models import local_date
from ledger.schedules import SYSTEM_TIMEZONE

from .work_queue import anything_waits, work_queue_for

# A day's guard outlives the day, so a late redelivery still finds it.
SENT_GUARD_SECONDS = 2 * 24 * 3600


def digest_recipient_ids():
    """Ids of the staff members who take the digest, streamed (a fan-out reads them once)."""
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True, receives_digest=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("pk", flat=True)
        .iterator()
    )


def _sent_key(user_id: int, day: dt.date) -> str:
    return f"staff-digest:{user_id}:{day.isoformat()}"


def send_staff_digest(*, user_id: int, now: dt.datetime | None = None) -> bool:
    """Email ``user_id`` what waits for them; return whether an email went out."""
    now = now or timezone.now()
    user = (
        get_user_model()
        .objects.filter(pk=user_id, is_active=True, is_staff=True, receives_digest=True)
        .exclude(email="")
        .first()
    )
    if user is None:
        return False
    with translation.override(user.language or settings.LANGUAGE_CODE):
        lines = work_queue_for(user, now=now)
        if not anything_waits(lines):
            return False
        sent_key = _sent_key(user.pk, local_date(now, SYSTEM_TIMEZONE))
        if not cache.add(sent_key, True, SENT_GUARD_SECONDS):
            return False  # already sent today
        waiting = [line for line in lines if not line.is_empty]
        total = sum(line.count for line in waiting)
        subject = ngettext(
            "Commissary: %(count)d item waits for you",
            "Commissary: %(count)d items wait for you",
            total,
        ) % {"count": total}
        body = render_to_string(
            "reports/email/digest.txt",
            {
                "user": user,
                "lines": waiting,
                "now": now,
                "site_url": settings.SITE_URL,
                "preferences_url": settings.SITE_URL + reverse("reports:preferences"),
            },
        )
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception:
        cache.delete(sent_key)  # not sent: a retry may send it
        raise
    return True
