"""System checks of the payments app, run by every ``manage.py`` command that checks (``migrate``,
``check``, ``runserver``) and by ``check --deploy``.

"Production" at every start is: DEBUG off, the sandbox provider off, and a host name other than
this machine's in ALLOWED_HOSTS. DEBUG is off by default here (a secure default), so DEBUG alone
cannot tell a developer's checkout from a deployment; the sandbox creates money, so an
installation that allows it (``scripts/run``, the demo, the tests) is not production by the
project's own rule (DESIGN, "Deposits and payments"); and a site that answers only to localhost
serves no one else. The README's production settings meet all three. Under ``check --deploy``
the operator says it is production, so there DEBUG off is enough, as for ``commissary.checks``
(which also warns of the sandbox itself).
"""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks
from django.utils.translation import gettext as _

from . import credentials

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", ".localhost"}


def is_production() -> bool:
    serves_others = any(host not in LOCAL_HOSTS for host in settings.ALLOWED_HOSTS)
    return not settings.DEBUG and not settings.PAYMENTS_SANDBOX and serves_others


def _missing_keys_error() -> checks.Error:
    return checks.Error(
        "FIELD_ENCRYPTION_KEYS is not set: the merchant secrets stored in the database "
        "would be encrypted under a key derived from SECRET_KEY, and lost when it changes.",
        hint="Set FIELD_ENCRYPTION_KEYS to one or more Fernet keys (comma-separated, newest "
        "first) and run manage.py rotate_payment_secrets; see docs/payments.md.",
        id="payments.E001",
    )


@checks.register(checks.Tags.security, deploy=True)
def check_field_encryption_keys_for_deploy(app_configs=None, **kwargs):
    """``check --deploy`` with DEBUG off where the start-up check below took the installation
    for development (the sandbox on, or only local host names): a deployment it is not."""
    if not settings.DEBUG and not is_production() and not credentials.configured_keys():
        return [_missing_keys_error()]
    return []


@checks.register(checks.Tags.security)
def check_field_encryption_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    found = []
    for position, key in enumerate(credentials.configured_keys(), start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            found.append(
                checks.Error(
                    f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 bytes, "
                    "url-safe base64).",
                    hint='Make one with python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())".',
                    id="payments.E002",
                )
            )
    if found or credentials.configured_keys():
        return found
    if is_production():
        return [_missing_keys_error()]
    return [
        checks.Warning(
            "FIELD_ENCRYPTION_KEYS is not set: merchant secrets are encrypted under a key "
            "derived from SECRET_KEY (accepted in development only).",
            hint="Production refuses to start without FIELD_ENCRYPTION_KEYS; see docs/payments.md.",
            id="payments.W001",
        )
    ]


def _missing_payer_hash_key_error() -> checks.Error:
    return checks.Error(
        _(
            "PAYER_HASH_KEY is not set: payers are stored and matched under a key derived from "
            "SECRET_KEY, so a new SECRET_KEY would make every stored payer unmatchable and the "
            "payment-source rules would stop firing without a word."
        ),
        hint=_(
            'Set PAYER_HASH_KEY to a long random value (for example python -c "import secrets; '
            'print(secrets.token_urlsafe(48))"), keep it and never change it; see '
            "docs/monitoring.md."
        ),
        id="payments.E004",
    )


@checks.register(checks.Tags.security, deploy=True)
def check_payer_hash_key_for_deploy(app_configs=None, **kwargs):
    """As ``check_field_encryption_keys_for_deploy``: under ``check --deploy``, DEBUG off is
    production enough."""
    if not settings.DEBUG and not is_production() and not settings.PAYER_HASH_KEY:
        return [_missing_payer_hash_key_error()]
    return []


@checks.register(checks.Tags.security)
def check_payer_hash_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """An error, not a warning, in production: the fallback key works until the day
    SECRET_KEY is rotated, and from then on every watched payment source and every "same
    source" count silently misses the payers stored before, which nobody would notice."""
    if settings.PAYER_HASH_KEY or not is_production():
        return []
    return [_missing_payer_hash_key_error()]


@checks.register()
def check_environment_merchant_keys(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The environment's merchant accounts (ALIPAY_*, WECHATPAY_*): a key that cannot be read
    would fail every payment at run time, so it is named at start-up. (A facility's own
    account is checked when it is saved in the admin.)"""
    found = []
    for provider, setting in (("alipay", "PAYMENTS_ALIPAY"), ("wechat", "PAYMENTS_WECHAT")):
        config = dict(getattr(settings, setting, {}) or {})
        if not credentials.is_complete(provider, config):
            continue
        for name in credentials.unreadable_key_fields(provider, config):
            variable = ("ALIPAY_" if provider == "alipay" else "WECHATPAY_") + {
                "app_private_key": "APP_PRIVATE_KEY",
                "alipay_public_key": "PUBLIC_KEY",
                "private_key": "PRIVATE_KEY",
                "platform_public_key": "PLATFORM_PUBLIC_KEY",
            }[name]
            found.append(
                checks.Error(
                    f"{variable} cannot be read as an RSA key.",
                    hint="Give the PEM text (-----BEGIN ... KEY----- lines kept) or the bare "
                    "base64 text the provider's console shows; see docs/payments.md.",
                    id="payments.E003",
                )
            )
    return found
