from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FamilyConfig(AppConfig):
    """The family's pages (``/`` and ``/family/``): linking to an inmate, deposits, history,
    receipts and their own account, plus the staff screens that decide links and blocks."""

    name = "family"
    verbose_name = _("Family pages")
