"""System checks of the payments app, run by every ``manage.py`` command that checks (``migrate``,
``check``, ``runserver``) and by ``check --deploy``.

"Production" here is DEBUG off and the sandbox provider off: the sandbox creates money, so an
installation that allows it (development, the demo, the tests: ``scripts/run`` and the test
settings turn it on) is not production by the project's own rule (DESIGN, "Deposits and
payments").
"""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core import checks

from . import credentials


def is_production() -> bool:
    return not settings.DEBUG and not settings.PAYMENTS_SANDBOX


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
        return [
            checks.Error(
                "FIELD_ENCRYPTION_KEYS is not set: the merchant secrets stored in the database "
                "would be encrypted under a key derived from SECRET_KEY, and lost when it "
                "changes.",
                hint="Set FIELD_ENCRYPTION_KEYS to one or more Fernet keys (comma-separated, "
                "newest first) and run manage.py rotate_payment_secrets; see docs/payments.md.",
                id="payments.E001",
            )
        ]
    return [
        checks.Warning(
            "FIELD_ENCRYPTION_KEYS is not set: merchant secrets are encrypted under a key "
            "derived from SECRET_KEY (accepted in development only).",
            hint="Production refuses to start without FIELD_ENCRYPTION_KEYS; see docs/payments.md.",
            id="payments.W001",
        )
    ]


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
