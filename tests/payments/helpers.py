"""Family-side helpers shared by the accounts, payments and browser tests."""

import itertools
import json
import time

from allauth.account.models import EmailAddress

from accounts.models import DepositorLink, User
from payments.models import Payment, SandboxCharge
from payments.providers.sandbox import SIGNATURE_HEADER, signature_header

PASSWORD = "a long family passphrase"
_numbers = itertools.count()


def depositor(email: str | None = None) -> User:
    """A family depositor with a verified email address, as allauth leaves one."""
    n = next(_numbers)
    email = email or f"family{n}@example.com"
    user = User.objects.create_user(username=f"family{n}", email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def approved_link(user, inmate) -> DepositorLink:
    return DepositorLink.objects.create(
        depositor=user,
        inmate=inmate,
        entered_inmate_number=inmate.inmate_number,
        entered_surname=inmate.surname,
        status=DepositorLink.Status.APPROVED,
    )


def callback_body(payment: Payment, **changes) -> bytes:
    """The sandbox's notification of ``payment``, naming the sandbox's fake payer as the
    sandbox does (``payer_id``), with ``changes`` on top."""
    payer_id = SandboxCharge.objects.filter(reference=payment.provider_reference).values_list(
        "payer_id", flat=True
    )
    payload = {
        "reference": payment.provider_reference,
        "status": "settled",
        "amount_fen": payment.amount_fen,
        "currency": payment.currency,
        "payer_id": payer_id.first() or "",
        **changes,
    }
    return json.dumps(payload).encode()


def post_callback(
    client, body: bytes, *, timestamp: int | None = None, secret: bytes | None = None
):
    """POST a sandbox callback signed as the sandbox signs it (or with another secret/time)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    header = signature_header(body, timestamp=timestamp, secret=secret)
    return client.post(
        "/payments/sandbox/callback",
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: header},
    )
