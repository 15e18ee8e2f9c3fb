"""Merchant accounts of the real providers: where their keys come from, and which providers a
facility offers.

An account is the environment's (``settings.PAYMENTS_ALIPAY`` / ``PAYMENTS_WECHAT``, for every
facility without its own) or a facility's own ``MerchantAccount`` row. Keys never live in the
repository; a facility's are stored encrypted with Fernet under a key derived from SECRET_KEY
(``SECRET_KEY_FALLBACKS`` still decrypt, so the key can be rotated: re-save the accounts).
"""

import base64
import json
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

from .models import MerchantAccount

# What each provider's account needs, and which field is its (public) merchant id.
REQUIRED = {
    "alipay": ("app_id", "app_private_key", "alipay_public_key"),
    "wechat": (
        "mchid",
        "appid",
        "private_key",
        "cert_serial_no",
        "apiv3_key",
        "platform_public_key",
        "platform_public_key_id",
    ),
}
MERCHANT_ID_FIELD = {"alipay": "app_id", "wechat": "mchid"}
DEFAULT_GATEWAY = {
    "alipay": "https://openapi.alipay.com/gateway.do",
    "wechat": "https://api.mch.weixin.qq.com",
}
_SETTINGS = {"alipay": "PAYMENTS_ALIPAY", "wechat": "PAYMENTS_WECHAT"}


class CredentialsUnreadable(Exception):
    """Stored secrets that no current or fallback SECRET_KEY decrypts."""


@dataclass(frozen=True)
class Account:
    provider: str
    facility_id: int | None  # None: the environment's account
    config: dict = field(repr=False)

    @property
    def merchant_id(self) -> str:
        return self.config[MERCHANT_ID_FIELD[self.provider]]

    @property
    def gateway(self) -> str:
        return self.config.get("gateway") or DEFAULT_GATEWAY[self.provider]


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    salted_hmac(
                        "payments.credentials", "fernet-key", secret=key, algorithm="sha256"
                    ).digest()
                )
            )
            for key in keys
        ]
    )


def encrypt_config(config: dict) -> str:
    return _fernet().encrypt(json.dumps(config, sort_keys=True).encode()).decode()


def decrypt_config(token: str) -> dict:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable() from None


def is_complete(provider: str, config: dict) -> bool:
    return all(config.get(name) for name in REQUIRED[provider])


def environment_account(provider: str) -> Account | None:
    config = dict(getattr(settings, _SETTINGS[provider], {}) or {})
    return Account(provider, None, config) if is_complete(provider, config) else None


def _facility_account(row: MerchantAccount) -> Account:
    return Account(row.provider, row.facility_id, decrypt_config(row.secrets_encrypted))


def account_for_facility(provider: str, facility_id: int) -> Account | None:
    """The account a new payment at ``facility_id`` is placed under: the facility's own
    (only if enabled: a disabled one also hides the environment's), else the environment's."""
    row = MerchantAccount.objects.filter(facility_id=facility_id, provider=provider).first()
    if row is not None:
        return _facility_account(row) if row.is_enabled else None
    return environment_account(provider)


def account_for_merchant(provider: str, merchant_id: str, facility_id: int) -> Account | None:
    """The account with ``merchant_id`` that ``facility_id`` may use (its own row, enabled or
    not, since payments placed before it was disabled still settle; or the environment's)."""
    row = MerchantAccount.objects.filter(
        facility_id=facility_id, provider=provider, merchant_id=merchant_id
    ).first()
    if row is not None:
        return _facility_account(row)
    account = environment_account(provider)
    return account if account is not None and account.merchant_id == merchant_id else None


def accounts_with_merchant_id(provider: str, merchant_id: str) -> list[Account]:
    """Every account that could have signed a notification naming ``merchant_id``."""
    accounts = [
        _facility_account(row)
        for row in MerchantAccount.objects.filter(provider=provider, merchant_id=merchant_id)
    ]
    environment = environment_account(provider)
    if environment is not None and environment.merchant_id == merchant_id:
        accounts.append(environment)
    return accounts


def all_accounts(provider: str) -> list[Account]:
    accounts = [_facility_account(row) for row in MerchantAccount.objects.filter(provider=provider)]
    environment = environment_account(provider)
    return [*accounts, environment] if environment is not None else accounts


def enabled_real_providers(facility_id: int) -> list[str]:
    return [name for name in REQUIRED if account_for_facility(name, facility_id) is not None]
