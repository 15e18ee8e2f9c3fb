from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.core.signals import request_finished
from django.utils.translation import gettext_lazy as _

from commissary import logs


class CommissaryConfig(AppConfig):
    """The project's core as an app, for the tables no other app owns (the database cache)."""

    name = "commissary"
    verbose_name = _("Commissary")
    # This module also defines django-axes' config (and imports axes' own), so Django would
    # not pick this one for "commissary" on its own.
    default = True

    def ready(self):
        # A request's id and log context end with its response (commissary.logs).
        request_finished.connect(logs.end_request, dispatch_uid="commissary.logs.end_request")


class AxesConfig(AxesAppConfig):
    """django-axes as installed here, with a name in the reader's language: it has none of its
    own, so the admin's app list showed its label ("Axes") on every page a superuser opens."""

    verbose_name = _("Sign-in attempts")
