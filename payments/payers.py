"""Who paid: the payer as a provider names them, kept on the payment only as a keyed hash.

A provider's payer id (Alipay's ``buyer_id`` or ``buyer_open_id``, WeChat Pay's
``payer.openid``, the sandbox's fake) is personal data that monitoring needs only to match: is
this the same payment source as before? So the payment keeps a ``fingerprint``, an HMAC-SHA256
of the provider's name and the id under ``PAYER_HASH_KEY`` (a key of its own, not the
encryption keys, which rotate: a new hash key would make every earlier payer unmatchable), and
a masked ``label`` a reviewer can read (Alipay's ``buyer_logon_id`` arrives masked; anything
else is masked here), and the payer's ``name`` only where the provider returns one. The id
itself is never stored. A security officer who types a payer id
into a rule gets the same fingerprint (``fingerprint``), so the rule matches without the id
being kept there either.
"""

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.utils.crypto import salted_hmac


@dataclass(frozen=True)
class Payer:
    """The payer of a settled payment, as its provider's callback or query names them: the id,
    a masked label, and the payer's name where the provider gives one (only Alipay's query,
    ``buyer_user_name``, for merchants Alipay agreed to return it to; never a notification,
    never WeChat Pay)."""

    provider_id: str
    label: str = ""
    name: str = ""


def _key() -> bytes:
    if settings.PAYER_HASH_KEY:
        return settings.PAYER_HASH_KEY.encode()
    return salted_hmac("payments.payers", "payer-hash-key", algorithm="sha256").digest()


def fingerprint(provider: str, provider_id: str) -> str:
    """The keyed hash a payer is stored and matched under: 64 hex digits, one per provider and
    payer id (an Alipay id and a WeChat openid never collide)."""
    message = f"{provider}:{provider_id.strip()}".encode()
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def masked(value: str) -> str:
    """A label a reviewer may read: kept as it is if the provider already masked it, else its
    first and last four characters (all but the last two of a short one hidden)."""
    value = value.strip()
    if "*" in value:
        return value[:64]
    if len(value) <= 8:
        return "*" * max(len(value) - 2, 0) + value[-2:]
    return f"{value[:4]}****{value[-4:]}"
