from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FacilitiesConfig(AppConfig):
    name = "facilities"
    verbose_name = _("Facilities and inmates")

    def ready(self):
        # Models are loaded only now; the services import the ledger's, which import them.
        from ledger.services.requests import register_release_handler  # noqa: PLC0415

        from .services import release_inmate  # noqa: PLC0415

        register_release_handler(release_inmate)
