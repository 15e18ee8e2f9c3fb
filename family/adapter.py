"""How django-allauth treats family depositors: they are known by their email alone.

allauth would make up a username from the email ("wang.mei") and show it on pages, in emails
and to staff; a depositor's username here is their email (or, for an email too long for the
field, a made-up one nobody sees), and everything shown names the email. Emails speak in the
site's own name ("监所商店"/"Commissary"), not the host name the request came to.
"""

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.utils import user_email, user_username
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

SITE_NAME = _("Commissary")


def user_display(user) -> str:
    return user_email(user) or ""


@dataclass(frozen=True)
class SiteForEmails:
    name: str
    domain: str


class DepositorAccountAdapter(DefaultAccountAdapter):
    def populate_username(self, request, user) -> None:
        if user_username(user):
            return
        email = user_email(user) or ""
        limit = get_user_model()._meta.get_field("username").max_length
        user_username(user, email if 0 < len(email) <= limit else f"depositor-{uuid.uuid4().hex}")

    def send_mail(self, template_prefix, email, context):
        site = SiteForEmails(name=str(SITE_NAME), domain=urlsplit(settings.SITE_URL).netloc)
        super().send_mail(template_prefix, email, {**context, "current_site": site})
