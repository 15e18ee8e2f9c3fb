from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommissaryConfig(AppConfig):
    """The project's core as an app, for the tables no other app owns (the database cache)."""

    name = "commissary"
    verbose_name = _("Commissary")
