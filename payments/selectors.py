"""Reads of the payments app that other screens show: what needs staff at a facility's
payment providers (refunds that keep failing, merchant accounts whose keys cannot be read)."""

from django.db.models import Q

from . import credentials
from .models import MerchantAccount, ProviderCall


def failing_provider_calls(*, facility_id: int) -> int:
    """Provider calls of the facility tried and not done (still retrying, or given up)."""
    return (
        ProviderCall.objects.filter(facility_id=facility_id)
        .filter(Q(state=ProviderCall.State.GAVE_UP) | Q(state="pending", attempts__gt=0))
        .count()
    )


def unreadable_merchant_accounts(*, facility_id: int) -> list[MerchantAccount]:
    """The facility's merchant accounts whose stored keys no configured key decrypts."""
    return credentials.unreadable_accounts(MerchantAccount.objects.filter(facility_id=facility_id))
