"""An inmate's commissary side: grade, restrictions, and the ID card with its QR code."""

import io

import qrcode
import qrcode.image.svg
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from facilities import services as facility_services

from ..models import (
    InmateCommissary,
    Restriction,
)


@admin.register(Restriction)
class RestrictionAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("inmate", "kind", "category", "product", "ends_at", "reason")
    list_filter = ("kind",)
    # Searched by number or name within the staff member's facilities (the inmate admin's
    # scoped queryset answers the autocomplete): never a select of every inmate.
    autocomplete_fields = ("inmate",)
    readonly_fields = ("created_by", "created_at")  # who imposed it and when: recorded, not typed

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class RestrictionInline(FacilityScopedAdmin, admin.TabularInline):
    model = Restriction
    extra = 0
    fields = ("kind", "category", "product", "ends_at", "reason")


@admin.register(InmateCommissary)
class InmateCommissaryAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """An inmate's grade, restrictions and ID card; the inmate record itself is kept in the
    facilities admin."""

    list_display = ("inmate_number", "surname", "given_name", "facility", "grade", "card")
    list_filter = ("facility", "grade")
    search_fields = ("inmate_number", "surname", "given_name")
    fields = ("inmate_number", "surname", "given_name", "facility", "grade")
    readonly_fields = ("inmate_number", "surname", "given_name", "facility")
    inlines = [RestrictionInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Only the grade is edited here, through its service (the inmate record belongs to
        the facilities admin)."""
        if "grade" in form.changed_data:
            facility_services.assign_grade(inmate_id=obj.pk, grade_id=obj.grade_id)

    def save_formset(self, request, form, formset, change):
        # A restriction added on this page records who imposed it, as the restriction page does.
        for restriction in formset.save(commit=False):
            if restriction.pk is None:
                restriction.created_by = request.user
            restriction.save()
        for removed in formset.deleted_objects:
            removed.delete()
        formset.save_m2m()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "grade":
            inmate_id = request.resolver_match.kwargs.get("object_id")
            inmate = InmateCommissary.objects.filter(pk=inmate_id).first()
            if inmate is not None:
                field.queryset = field.queryset.filter(facility_id=inmate.facility_id)
        return field

    @admin.display(description=_("ID card"))
    def card(self, inmate):
        from django.utils.html import format_html

        url = reverse("admin:catalog_inmatecommissary_card", args=[inmate.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Print ID card"))

    def get_urls(self):
        return [
            path(
                "<int:inmate_id>/card/",
                self.admin_site.admin_view(self.card_view),
                name="catalog_inmatecommissary_card",
            ),
            path(
                "<int:inmate_id>/card/qr.svg",
                self.admin_site.admin_view(self.card_qr_view),
                name="catalog_inmatecommissary_card_qr",
            ),
            *super().get_urls(),
        ]

    def _inmate(self, request, inmate_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=inmate_id)

    def card_view(self, request, inmate_id):
        """A printable ID card: name, number, photo space, and the card token as a QR code,
        which signs the inmate in at a kiosk together with the PIN."""
        inmate = self._inmate(request, inmate_id)
        return TemplateResponse(
            request,
            "admin/catalog/id_card.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("ID card"),
                "inmate": inmate,
                "qr_url": reverse("admin:catalog_inmatecommissary_card_qr", args=[inmate.pk]),
            },
        )

    def card_qr_view(self, request, inmate_id):
        inmate = self._inmate(request, inmate_id)
        if not inmate.card_token:
            raise PermissionDenied
        image = qrcode.make(inmate.card_token, image_factory=qrcode.image.svg.SvgPathImage)
        buffer = io.BytesIO()
        image.save(buffer)
        response = HttpResponse(buffer.getvalue(), content_type="image/svg+xml")
        response["Cache-Control"] = "no-store"
        return response
