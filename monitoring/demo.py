"""The demo's monitoring: one watched depositor (a rule names them) whose two paid deposits are
held for review, so a security officer has something in the queue. Idempotent: the rule, the
links and the deposits are found again by their fixed keys."""

import datetime as dt

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import DepositorLink
from commissary import errors
from facilities.models import Inmate
from ledger import services as ledger
from payments import services as payments
from payments.models import Payment

from . import services
from .models import Rule

WATCHED_EMAIL = "watched.sender@example.com"
HELD_AMOUNTS_FEN = (20_000, 15_050)


def seed_monitoring(*, facility, staff, provider: str, now: dt.datetime) -> dict:
    user, _ = get_user_model().objects.get_or_create(
        username=WATCHED_EMAIL, defaults={"email": WATCHED_EMAIL}
    )
    EmailAddress.objects.get_or_create(
        user=user, email=WATCHED_EMAIL, defaults={"verified": True, "primary": True}
    )
    if not Rule.objects.filter(facility=facility, depositor=user).exists():
        services.save_rule(
            rule=Rule(
                facility=facility,
                kind=Rule.Kind.MONITORED_DEPOSITOR,
                depositor=user,
                note="Demo: a watched sender",
            ),
            staff=staff,
            now=now,
        )
    inmates = Inmate.objects.filter(facility=facility, status=Inmate.Status.ACTIVE).order_by("pk")
    for inmate, amount_fen in zip(inmates[1:3], HELD_AMOUNTS_FEN, strict=False):
        DepositorLink.objects.get_or_create(
            depositor=user,
            inmate=inmate,
            defaults={
                "entered_inmate_number": inmate.inmate_number,
                "entered_surname": inmate.surname,
                "status": DepositorLink.Status.APPROVED,
            },
        )
        _held_deposit(user=user, inmate=inmate, amount_fen=amount_fen, provider=provider, now=now)
    return {"watched_depositor": WATCHED_EMAIL, "held_deposits": len(HELD_AMOUNTS_FEN)}


def _held_deposit(*, user, inmate, amount_fen, provider, now) -> None:
    """A deposit paid now whose payment the rules hold, as the provider's callback leaves it."""
    try:
        with transaction.atomic():
            reserved = ledger.reserve_deposit(
                inmate_id=inmate.pk,
                amount_fen=amount_fen,
                idempotency_key=f"demo-watched-{inmate.pk}",
                idempotency_scope=ledger.depositor_scope(user.pk),
                provider=provider,
                depositor_id=user.pk,
                now=now,
            )
            payment, _ = Payment.objects.get_or_create(
                deposit=reserved,
                defaults={
                    "provider": provider,
                    "provider_reference": str(reserved.reference),
                    "amount_fen": reserved.amount_fen + reserved.fee_fen,
                    "currency": reserved.currency,
                    "created_at": now,
                },
            )
        payments.apply_provider_status(payment_id=payment.pk, status="settled", now=now)
    except (errors.BalanceCapExceeded, errors.MonthlyCapExceeded, errors.DomainError):
        return  # no room left for the demo inmate: the demo goes on without this one
