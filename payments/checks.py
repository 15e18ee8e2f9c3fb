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
