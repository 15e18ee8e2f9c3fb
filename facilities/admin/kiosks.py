"""Kiosk devices: registering one shows its key once; revoking stops it at once."""

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from ledger.models import Transaction
from ledger.services import kiosk_scope

from .. import services
from ..models import KioskDevice


@admin.register(KioskDevice)
class KioskDeviceAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("name", "facility", "key_prefix", "is_active", "created_at", "revoked_at")
    list_filter = ("facility", "is_active")
    fields = ("facility", "name", "key_prefix", "is_active", "revoked_at")
    readonly_fields = ("key_prefix", "is_active", "revoked_at")
    search_fields = ("name", "key_prefix")
    actions = ("revoke",)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "facility") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # A device that ever moved money stays, so the journal can name it; revoke it instead.
        if obj is not None and self.has_history(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @staticmethod
    def has_history(device) -> bool:
        return Transaction.objects.filter(idempotency_scope=kiosk_scope(device.pk)).exists()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        device, raw_key = services.register_kiosk_device(
            facility=form.cleaned_data["facility"], name=form.cleaned_data["name"]
        )
        obj.pk = device.pk
        request._issued_kiosk_key = raw_key

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, "_issued_kiosk_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        # The key is shown on this page only: never in a message (kept in a cookie or the
        # session) and never stored unhashed.
        return TemplateResponse(
            request,
            "admin/facilities/kioskdevice/key_issued.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Kiosk key issued"),
                "opts": self.model._meta,
                "device": obj,
                "raw_key": raw_key,
            },
        )

    @admin.action(description=_("Revoke the keys of selected kiosks"), permissions=("change",))
    def revoke(self, request, queryset):
        queryset = queryset.filter(is_active=True)
        if "apply" not in request.POST:
            return TemplateResponse(
                request,
                "admin/facilities/kioskdevice/revoke.html",
                {
                    **self.admin_site.each_context(request),
                    "title": gettext("Revoke kiosk keys"),
                    "opts": self.model._meta,
                    "devices": queryset,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        count = 0
        for device in queryset:
            services.revoke_kiosk_device(device_id=device.pk, staff_id=request.user.pk)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d kiosk key revoked.", "%(count)d kiosk keys revoked.", count)
            % {"count": count},
        )
