from django.contrib import admin

from accounts.admin_scope import FacilityScopedAdmin

from .models import Payment


@admin.register(Payment)
class PaymentAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """Read-only: payments change only through provider callbacks and polls. Staff see their
    facilities' payments only."""

    facility_field = "deposit__facility"

    list_display = ("provider_reference", "provider", "amount_fen", "currency", "status")
    list_filter = ("status", "provider")
    search_fields = ("provider_reference",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
