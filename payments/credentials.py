"""Merchant accounts of the real providers: where their keys come from, and which providers a
facility offers.

An account is the environment's (``settings.PAYMENTS_ALIPAY`` / ``PAYMENTS_WECHAT``, for every
facility without its own) or a facility's own ``MerchantAccount`` row. Keys never live in the
repository; a facility's are stored encrypted with Fernet.

The encryption keys are ``FIELD_ENCRYPTION_KEYS``, a list of Fernet keys of their own (not
SECRET_KEY, so rotating SECRET_KEY loses nothing and every host of one installation reads the
same rows): the first encrypts, every one decrypts (``MultiFernet``). To rotate, put a new key
first, run ``manage.py rotate_payment_secrets`` (it re-encrypts every row with the first key),
then drop the old key. Keys derived from SECRET_KEY and SECRET_KEY_FALLBACKS (how rows were
encrypted before the setting existed) still decrypt, after the configured ones, so an
installation moves to the setting by adding it and rotating; in development without the setting
they also encrypt (the system check ``payments.W001`` says so, and ``payments.E001`` refuses a
production start without the setting).

A row that no key decrypts (``CredentialsUnreadable``) breaks only its facility's account: the
look-ups that serve one facility raise it (a domain error the poll and the pages handle), those
that search every facility's accounts for a callback skip it, so other facilities' callbacks
and polls go on; staff see it on the merchant account list and the dashboard.
"""

import base64
import binascii
import contextlib
import json
import logging
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from commissary import errors

from .models import MerchantAccount

logger = logging.getLogger(__name__)

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
# The RSA keys of each provider's account, and whether each is private.
KEY_FIELDS = {
    "alipay": {"app_private_key": True, "alipay_public_key": False},
    "wechat": {"private_key": True, "platform_public_key": False},
}
DEFAULT_GATEWAY = {
    "alipay": "https://openapi.alipay.com/gateway.do",
    "wechat": "https://api.mch.weixin.qq.com",
}
_SETTINGS = {"alipay": "PAYMENTS_ALIPAY", "wechat": "PAYMENTS_WECHAT"}


class CredentialsUnreadable(errors.DomainError):
    """Stored secrets that no configured key decrypts: this facility's merchant account cannot
    be used until its keys are entered again (or the missing key is configured again)."""

    code = "credentials_unreadable"
    default_message = _(
        "The stored keys of this facility's merchant account cannot be read: enter them again "
        "in the admin, or configure the encryption key they were saved with."
    )


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


def configured_keys() -> list[str]:
    """``FIELD_ENCRYPTION_KEYS``, newest first (a list, or one comma-separated string)."""
    keys = getattr(settings, "FIELD_ENCRYPTION_KEYS", None) or []
    if isinstance(keys, str):
        keys = keys.split(",")
    return [key.strip() for key in keys if key.strip()]


def _derived_keys() -> list[bytes]:
    """The keys rows were encrypted with before ``FIELD_ENCRYPTION_KEYS`` existed: derived from
    SECRET_KEY and SECRET_KEY_FALLBACKS."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [
        base64.urlsafe_b64encode(
            salted_hmac(
                "payments.credentials", "fernet-key", secret=key, algorithm="sha256"
            ).digest()
        )
        for key in secrets
    ]


def _fernet() -> MultiFernet:
    """The configured keys first (the first encrypts), then the derived ones (decrypt only,
    unless nothing is configured: development)."""
    keys = [*configured_keys(), *_derived_keys()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_config(config: dict) -> str:
    return _fernet().encrypt(json.dumps(config, sort_keys=True).encode()).decode()


def decrypt_config(token: str) -> dict:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise CredentialsUnreadable() from None


def reencrypt(token: str) -> str:
    """``token`` encrypted again with the first key (``MultiFernet.rotate``); raises
    CredentialsUnreadable when no key decrypts it."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialsUnreadable() from None


def is_readable(row: MerchantAccount) -> bool:
    try:
        decrypt_config(row.secrets_encrypted)
    except CredentialsUnreadable:
        return False
    return True


def unreadable_accounts(queryset=None) -> list[MerchantAccount]:
    """The merchant accounts whose stored keys no configured key decrypts."""
    rows = MerchantAccount.objects.select_related("facility") if queryset is None else queryset
    return [row for row in rows if not is_readable(row)]


class UnreadableKey(ValueError):
    """A key that is neither PEM nor the bare base64 of a DER key."""


def pem_key(text: str, *, private: bool) -> str:
    """``text`` as a PEM key. PEM is kept as it is once it loads; a key pasted as bare base64
    (as Alipay's console and key tool show it, PKCS#1 or PKCS#8) is wrapped into PEM, as the
    official Alipay SDKs do. Raises UnreadableKey for anything else."""
    original, text = text, (text or "").strip()
    try:
        if "-----BEGIN" in text:
            loader = (
                serialization.load_pem_private_key if private else serialization.load_pem_public_key
            )
            arguments = (text.encode(), None) if private else (text.encode(),)
            loader(*arguments)
            return original
        der = base64.b64decode("".join(text.split()), validate=True)
        if private:
            key = serialization.load_der_private_key(der, None)
            return key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
        key = serialization.load_der_public_key(der)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    except (ValueError, TypeError, binascii.Error, UnicodeError) as failure:
        raise UnreadableKey(str(failure)) from None


def with_pem_keys(provider: str, config: dict) -> dict:
    """``config`` with its keys as PEM where they can be read (bare base64 wrapped); a key that
    cannot be read is left as it is, for the provider to refuse with its own error."""
    config = dict(config)
    for name, private in KEY_FIELDS[provider].items():
        if config.get(name):
            with contextlib.suppress(UnreadableKey):
                config[name] = pem_key(config[name], private=private)
    return config


def unreadable_key_fields(provider: str, config: dict) -> list[str]:
    """The key fields of ``config`` that are neither PEM nor bare base64 of a key."""
    unreadable = []
    for name, private in KEY_FIELDS[provider].items():
        try:
            pem_key(config.get(name, ""), private=private)
        except UnreadableKey:
            unreadable.append(name)
    return unreadable


def is_complete(provider: str, config: dict) -> bool:
    return all(config.get(name) for name in REQUIRED[provider])


def environment_account(provider: str) -> Account | None:
    config = dict(getattr(settings, _SETTINGS[provider], {}) or {})
    if not is_complete(provider, config):
        return None
    return Account(provider, None, with_pem_keys(provider, config))


def _facility_account(row: MerchantAccount) -> Account:
    config = decrypt_config(row.secrets_encrypted)
    return Account(row.provider, row.facility_id, with_pem_keys(row.provider, config))


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


def _readable_accounts(rows) -> list[Account]:
    """The accounts of ``rows`` that can be read. An unreadable one is logged and left out: a
    callback searching every facility's accounts must not fail for another facility's."""
    accounts = []
    for row in rows:
        try:
            accounts.append(_facility_account(row))
        except CredentialsUnreadable:
            logger.error(
                "the %s merchant account %s of facility %s cannot be decrypted; skipped",
                row.provider,
                row.merchant_id,
                row.facility_id,
            )
    return accounts


def accounts_with_merchant_id(provider: str, merchant_id: str) -> list[Account]:
    """Every readable account that could have signed a notification naming ``merchant_id``."""
    accounts = _readable_accounts(
        MerchantAccount.objects.filter(provider=provider, merchant_id=merchant_id)
    )
    environment = environment_account(provider)
    if environment is not None and environment.merchant_id == merchant_id:
        accounts.append(environment)
    return accounts


def all_accounts(provider: str) -> list[Account]:
    """Every readable account of ``provider`` (the facilities' and the environment's)."""
    accounts = _readable_accounts(MerchantAccount.objects.filter(provider=provider))
    environment = environment_account(provider)
    return [*accounts, environment] if environment is not None else accounts


def enabled_real_providers(facility_id: int) -> list[str]:
    """The real providers a family may choose at ``facility_id``; one whose account cannot be
    read is not offered (staff see why in the admin)."""
    names = []
    for name in REQUIRED:
        try:
            if account_for_facility(name, facility_id) is not None:
                names.append(name)
        except CredentialsUnreadable:
            logger.error("the %s account of facility %s cannot be decrypted", name, facility_id)
    return names
