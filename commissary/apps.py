from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommissaryConfig(AppConfig):
    """The project's core as an app, for the tables no other app owns (the database cache)."""

    name = "commissary"
    verbose_name = _("Commissary")


class AxesConfig(AxesAppConfig):
    """django-axes as installed here, with a name in the reader's language: it has none of its
    own, so the admin's app list showed its label ("Axes") on every page a superuser opens."""

    verbose_name = _("Sign-in attempts")
