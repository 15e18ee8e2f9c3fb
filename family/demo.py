"""The demo's family depositor: a verified email to sign in with, an approved link to the
first demo inmate, and a few paid deposits in earlier months (so history and receipts have
something to show). Idempotent: every deposit has a fixed key, every row is found again."""

import datetime as dt
from zoneinfo import ZoneInfo

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import DepositorLink
from commissary import errors
from facilities.models import Inmate
from ledger import services as ledger
from payments.models import Payment

# (minutes before now, amount in fen): small, so most of the month's room stays for the demo.
PAST_DEPOSITS = ((180, 5_000), (120, 3_000), (60, 2_000))


def link_demo_depositor(*, username: str, facility, provider: str, now: dt.datetime) -> dict:
    """Set the demo depositor up; returns what the credentials file says about them."""
    user = get_user_model().objects.get(username=username)
    EmailAddress.objects.get_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    inmate = Inmate.objects.filter(facility=facility, status=Inmate.Status.ACTIVE).order_by("pk")
    inmate = inmate.first()
    if inmate is None:
        return {"email": user.email, "linked": []}
    DepositorLink.objects.get_or_create(
        depositor=user,
        inmate=inmate,
        defaults={
            "entered_inmate_number": inmate.inmate_number,
            "entered_surname": inmate.surname,
            "status": DepositorLink.Status.APPROVED,
        },
    )
    # Within this facility-local month, like the rest of the demo's money.
    month_start = dt.datetime.combine(
        facility.local_month(now), dt.time(), tzinfo=ZoneInfo(facility.timezone)
    )
    for minutes_before, amount_fen in PAST_DEPOSITS:
        _past_deposit(
            user=user,
            inmate=inmate,
            amount_fen=amount_fen,
            provider=provider,
            at=max(now - dt.timedelta(minutes=minutes_before), month_start),
            key=f"demo-past-{minutes_before}",
        )
    return {
        "email": user.email,
        "linked": [
            {
                "facility": facility.code,
                "inmate_number": inmate.inmate_number,
                "surname": inmate.surname,
            }
        ],
    }


def _past_deposit(*, user, inmate, amount_fen, provider, at, key) -> None:
    """A deposit paid at ``at``, with its settled payment, as the sandbox would leave it."""
    try:
        with transaction.atomic():
            reserved = ledger.reserve_deposit(
                inmate_id=inmate.pk,
                amount_fen=amount_fen,
                idempotency_key=key,
                idempotency_scope=ledger.depositor_scope(user.pk),
                provider=provider,
                depositor_id=user.pk,
                now=at,
            )
            credited = ledger.credit_deposit(
                deposit_id=reserved.pk, provider_reference=str(reserved.reference), now=at
            )
            Payment.objects.get_or_create(
                deposit=credited,
                defaults={
                    "provider": provider,
                    "provider_reference": str(credited.reference),
                    "amount_fen": credited.amount_fen + credited.fee_fen,
                    "currency": credited.currency,
                    "status": Payment.Status.SETTLED,
                    "created_at": at,
                    "settled_at": at,
                    "receipt_sent_at": at,
                },
            )
    except (errors.DepositNotPending, errors.BalanceCapExceeded, errors.MonthlyCapExceeded):
        # Already resolved another way, or the demo inmate has no room: the demo goes on.
        return
