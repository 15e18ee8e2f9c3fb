"""Family deposits, read-only, with their CSV export."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from commissary.money import format_fen

from ..exports import DepositResource
from ..models import (
    Deposit,
)
from ..provider_words import provider_name
from .base import ReadOnlyAdmin, ScopedExportMixin


class ProviderFilter(admin.SimpleListFilter):
    """The providers deposits were paid through, by name in the reader's language."""

    title = _("provider")
    parameter_name = "provider"

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .order_by("provider")
            .values_list("provider", flat=True)
            .distinct()
        )
        return [(code, provider_name(code)) for code in codes]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(provider=self.value())


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
        "provider_shown",
        "expires_at",
    )
    list_filter = ("status", ProviderFilter, "facility")
    search_fields = ("reference", "inmate__inmate_number", "provider_reference")
    date_hierarchy = "created_at"
    list_select_related = ("inmate",)

    def get_fields(self, request, obj=None):
        return [
            "provider_shown" if name == "provider" else name
            for name in super().get_fields(request, obj)
        ]

    @admin.display(description=_("provider"), ordering="provider")
    def provider_shown(self, deposit):
        return provider_name(deposit.provider)

    @admin.display(description=_("amount"))
    def amount(self, deposit):
        return format_fen(deposit.amount_fen, deposit.currency)

    @admin.display(description=_("fee"))
    def fee(self, deposit):
        return format_fen(deposit.fee_fen, deposit.currency)
