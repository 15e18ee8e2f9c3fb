"""Family deposits, read-only, with their CSV export."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from commissary.money import format_fen

from ..exports import DepositResource
from ..models import (
    Deposit,
)
from .base import ReadOnlyAdmin, ScopedExportMixin


@admin.register(Deposit)
class DepositAdmin(ScopedExportMixin, ReadOnlyAdmin):
    resource_classes = [DepositResource]
    list_display = (
        "reference",
        "created_at",
        "inmate",
        "amount",
        "fee",
        "status",
        "provider",
        "expires_at",
    )
    list_filter = ("status", "provider", "facility")
    search_fields = ("reference", "inmate__inmate_number", "provider_reference")
    date_hierarchy = "created_at"
    list_select_related = ("inmate",)

    @admin.display(description=_("amount"))
    def amount(self, deposit):
        return format_fen(deposit.amount_fen, deposit.currency)

    @admin.display(description=_("fee"))
    def fee(self, deposit):
        return format_fen(deposit.fee_fen, deposit.currency)
