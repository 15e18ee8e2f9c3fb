"""Writes of ``accounts`` that other apps' pages call."""

from django.contrib.auth import get_user_model
from django.db import transaction


def set_staff_preferences(*, user_id: int, receives_digest: bool, language: str) -> None:
    """A staff member's own choices: the daily digest on or off, and its language (blank for
    the site's)."""
    with transaction.atomic():
        get_user_model().objects.filter(pk=user_id).update(
            receives_digest=receives_digest, language=language
        )
