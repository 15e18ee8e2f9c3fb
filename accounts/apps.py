from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("People who sign in")

    def ready(self):
        import commissary.checks  # noqa: F401, PLC0415 (registers the project's system checks)

        from . import audit, names, roles  # noqa: PLC0415 (models are loaded only now)

        names.install()  # roles and permissions read in the reader's language
        post_migrate.connect(roles.sync_role_groups, dispatch_uid="accounts.sync_role_groups")
        audit.register_audited_models()
