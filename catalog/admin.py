"""Staff screens for the commissary: products and stock, grades and the facility's festival
months (when the grades' festival limits apply), restrictions, orders with their fulfilment
(pick list per housing unit, picked, delivered, cancelled with a refund) and the inmate's ID
card with its QR code. Each action calls one service; no screen moves money itself. Staff see
only their facilities' rows, through the admin's one facility scope
(``accounts.admin_scope.FacilityScopedAdmin``); products and categories are one catalogue for
every facility, and each facility's stock and availability are scoped."""

import io

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from commissary.errors import DomainError
from facilities import services as facility_services
from facilities.models import FestivalMonth, Grade
from ledger.forms import YuanField
from ledger.money import format_fen

from . import selectors, services
from .models import (
    MAX_PRICE_FEN,
    Category,
    FacilityProduct,
    InmateCommissary,
    Order,
    OrderItem,
    Product,
    RefusedOrder,
    Restriction,
    localized,
)


@admin.register(Category)
class CategoryAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    scope_global = True  # one catalogue for every facility
    list_display = ("code", "name_zh", "name_en", "sort_order")


class FacilityProductInline(FacilityScopedAdmin, admin.TabularInline):
    model = FacilityProduct
    extra = 0


class YuanAmountsForm(forms.ModelForm):
    """A model form whose amounts are typed and shown in yuan: ``yuan_amounts`` maps each
    yuan form field to the fen model field it sets."""

    yuan_amounts: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for yuan_field, fen_field in self.yuan_amounts.items():
            self.fields[yuan_field].initial = getattr(self.instance, fen_field)

    def clean(self):
        cleaned_data = super().clean()
        for yuan_field, fen_field in self.yuan_amounts.items():
            if yuan_field in cleaned_data:  # valid; an optional one left empty is None
                setattr(self.instance, fen_field, cleaned_data[yuan_field])
        return cleaned_data

    def _update_errors(self, errors):
        # The model's own checks (``Model.clean``) name its fen fields, which are not on the
        # form: show them at the yuan field the amount was typed in.
        if hasattr(errors, "error_dict"):
            yuan_field_of = {fen: yuan for yuan, fen in self.yuan_amounts.items()}
            errors = ValidationError(
                {
                    yuan_field_of.get(field, field): messages
                    for field, messages in errors.error_dict.items()
                }
            )
        super()._update_errors(errors)


class ProductForm(YuanAmountsForm):
    yuan_amounts = {"price": "price_fen"}
    price = YuanField(label=_("Price"))

    class Meta:
        model = Product
        fields = ("sku", "name_zh", "name_en", "category", "is_active", "max_per_order")

    def clean_price(self):
        price_fen = self.cleaned_data["price"]
        if price_fen is not None and price_fen > MAX_PRICE_FEN:
            raise forms.ValidationError(
                _("A price is at most %(amount)s.") % {"amount": format_fen(MAX_PRICE_FEN)}
            )
        return price_fen


@admin.register(Product)
class ProductAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    scope_global = True  # one catalogue; stock and availability are per facility (scoped)
    form = ProductForm
    fields = ("sku", "name_zh", "name_en", "category", "price", "is_active", "max_per_order")
    list_display = ("sku", "name_zh", "name_en", "category", "price", "is_active", "max_per_order")
    list_filter = ("category", "is_active")
    search_fields = ("sku", "name_zh", "name_en")
    inlines = [FacilityProductInline]

    @admin.display(description=_("price"), ordering="price_fen")
    def price(self, product):
        return format_fen(product.price_fen)


@admin.register(FacilityProduct)
class FacilityProductAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("product", "facility", "is_available", "stock")
    list_editable = ("is_available", "stock")
    list_filter = ("facility", "is_available")
    search_fields = ("product__sku", "product__name_zh", "product__name_en")


class GradeForm(YuanAmountsForm):
    yuan_amounts = {
        "spending_limit": "spending_limit_fen",
        "festival_spending_limit": "festival_spending_limit_fen",
    }
    spending_limit = YuanField(
        label=_("Spending limit"),
        required=False,
        allow_zero=True,
        help_text=_("Commissary spending allowed per period, in yuan; empty for no limit."),
    )
    festival_spending_limit = YuanField(
        label=_("Festival-month spending limit"),
        required=False,
        allow_zero=True,
        help_text=_(
            "Allowed per period instead of the usual limit when an order falls in one of the "
            "facility's festival months, in yuan; at least the usual limit. Empty: the usual "
            "limit applies all year."
        ),
    )

    class Meta:
        model = Grade
        fields = ("facility", "name", "spending_period")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "facility" in self.fields:
            # Inmates hold a grade of their own facility: a grade never moves to another one.
            # Disabled rather than read-only, so the name is still checked unique per facility.
            self.fields["facility"].disabled = True


@admin.register(Grade)
class GradeAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = GradeForm
    fields = ("facility", "name", "spending_limit", "festival_spending_limit", "spending_period")
    list_display = (
        "name",
        "facility",
        "spending_limit",
        "festival_spending_limit",
        "spending_period",
    )
    list_filter = ("facility",)
    list_select_related = ("facility",)

    def get_actions(self, request):
        # One grade at a time, through the delete page: it names the inmates holding a grade
        # and refuses to delete it, where the list action could only report a count.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            # The inmates holding the grade are the refusal, not something to delete with it:
            # the page lists them (admin/facilities/grade/delete_confirmation.html) rather than
            # an inmate delete permission that nobody should have for this.
            perms_needed = set()
        return to_delete, model_count, perms_needed, protected

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as refusal:
            # An inmate was given the grade after the page checked (the service re-checks under
            # the grade's lock): the delete rolled back, and the grade's page says why.
            self.message_user(request, refusal.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:facilities_grade_change", args=[object_id]))

    def delete_model(self, request, obj):
        facility_services.delete_grade(grade_id=obj.pk)

    @admin.display(description=_("spending limit"))
    def spending_limit(self, grade):
        if grade.spending_limit_fen is None:
            return gettext("No limit")
        return format_fen(grade.spending_limit_fen)

    @admin.display(description=_("festival-month spending limit"))
    def festival_spending_limit(self, grade):
        if grade.festival_spending_limit_fen is None:
            return gettext("As usual")
        return format_fen(grade.festival_spending_limit_fen)


class FestivalMonthForm(forms.ModelForm):
    """A festival month picked as a month (a browser's month picker, or typed as 2027-02); a
    full date is accepted too and stored as the first of its month."""

    month = forms.DateField(
        label=_("Festival month"),
        input_formats=["%Y-%m", "%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
        help_text=_(
            "For example 2027-02. Orders placed in this month, in the facility's time, are "
            "held to the grades' festival-month limits."
        ),
    )

    class Meta:
        model = FestivalMonth
        fields = ("facility", "month", "name")

    def clean_month(self):
        return self.cleaned_data["month"].replace(day=1)


@admin.register(FestivalMonth)
class FestivalMonthAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = FestivalMonthForm
    list_display = ("month_shown", "name", "facility")
    list_filter = ("facility",)
    list_select_related = ("facility",)
    search_fields = ("name",)
    ordering = ("facility__name", "-month")

    @admin.display(description=_("month"), ordering="month")
    def month_shown(self, festival_month):
        return f"{festival_month.month:%Y-%m}"


@admin.register(Restriction)
class RestrictionAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("inmate", "kind", "category", "product", "ends_at", "reason")
    list_filter = ("kind",)
    raw_id_fields = ("inmate",)
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


class OrderItemInline(FacilityScopedAdmin, admin.TabularInline):
    facility_field = "order__facility"
    model = OrderItem
    extra = 0
    fields = ("product", "name_as_sold", "quantity", "unit_price", "line_total")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("name as sold"))
    def name_as_sold(self, item):
        return localized(item.name_zh, item.name_en)

    @admin.display(description=_("unit price"))
    def unit_price(self, item):
        return format_fen(item.unit_price_fen, item.order.currency)

    @admin.display(description=_("line total"))
    def line_total(self, item):
        return format_fen(item.line_total_fen, item.order.currency)


@admin.register(Order)
class OrderAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("id", "inmate", "housing_unit", "status", "total", "created_at")
    list_filter = ("status", "facility", "inmate__housing_unit")
    search_fields = ("inmate__inmate_number", "inmate__surname")
    date_hierarchy = "created_at"
    inlines = [OrderItemInline]
    actions = ["print_pick_list", "mark_picked", "mark_delivered", "cancel_orders"]
    readonly_fields = (
        "facility",
        "inmate",
        "device",
        "status",
        "total",
        "purchase",
        "refund",
        "created_at",
        "picked_at",
        "delivered_at",
        "cancelled_at",
        "cancel_reason",
        "handled_by",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("inmate", "inmate__housing_unit")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("housing unit"))
    def housing_unit(self, order):
        return order.inmate.housing_unit

    @admin.display(description=_("total"), ordering="total_fen")
    def total(self, order):
        return format_fen(order.total_fen, order.currency)

    @admin.action(description=_("Print the pick list (per housing unit)"), permissions=["view"])
    def print_pick_list(self, request, queryset):
        orders = queryset.filter(status=Order.Status.PLACED).order_by("created_at", "id")
        return TemplateResponse(
            request,
            "admin/catalog/pick_list.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Pick list"),
                "units": selectors.pick_list(orders=orders),
            },
        )

    def _move(self, request, queryset, service, done_message):
        moved = 0
        for order in queryset:
            try:
                service(order_id=order.pk, staff_id=request.user.pk)
                moved += 1
            except DomainError as error:
                self.message_user(request, f"#{order.pk}: {error.message}", messages.WARNING)
        self.message_user(request, done_message % {"count": moved}, messages.SUCCESS)

    @admin.action(description=_("Mark as picked"), permissions=["change"])
    def mark_picked(self, request, queryset):
        self._move(
            request, queryset, services.mark_order_picked, gettext("%(count)d orders picked.")
        )

    @admin.action(description=_("Mark as delivered"), permissions=["change"])
    def mark_delivered(self, request, queryset):
        self._move(
            request,
            queryset,
            services.mark_order_delivered,
            gettext("%(count)d orders delivered."),
        )

    @admin.action(description=_("Cancel and refund"), permissions=["change"])
    def cancel_orders(self, request, queryset):
        """Shows what will be refunded first; cancels only after the confirmation with a
        reason (as Django's own delete action does)."""
        orders = list(queryset.exclude(status__in=["delivered", "cancelled"]))
        reason = request.POST.get("reason", "").strip()
        if request.POST.get("confirmed") == "yes" and reason:
            cancelled = 0
            for order in orders:
                try:
                    services.cancel_order(
                        order_id=order.pk, staff_id=request.user.pk, reason=reason
                    )
                    cancelled += 1
                except DomainError as error:
                    self.message_user(request, f"#{order.pk}: {error.message}", messages.WARNING)
            self.message_user(
                request,
                gettext("%(count)d orders cancelled and refunded.") % {"count": cancelled},
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "admin/catalog/cancel_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Cancel and refund orders"),
                "orders": orders,
                "total": format_fen(sum(order.total_fen for order in orders)),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "needs_reason": request.POST.get("confirmed") == "yes" and not reason,
            },
        )


@admin.register(RefusedOrder)
class RefusedOrderAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """What inmates tried to buy and were refused (too little money, over the spending limit,
    out of stock, restricted), as the kiosk was answered. Read-only: the record is the answer
    a replay of the kiosk's key gets back."""

    list_display = ("created_at", "inmate", "code", "message", "device")
    list_filter = ("code", "facility")
    search_fields = ("inmate__inmate_number", "inmate__surname")
    date_hierarchy = "created_at"
    fields = ("facility", "inmate", "device", "code", "message", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("inmate", "device")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
