"""Orders and their fulfilment: pick list per housing unit, picked, delivered, cancelled with
a refund; and the refusals kept under a kiosk's key."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from commissary.errors import DomainError
from commissary.money import format_fen

from .. import selectors, services
from ..models import (
    Order,
    OrderItem,
    RefusedOrder,
    localized,
)


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
        """Each order that cannot take the step says why (not picked yet, cancelled); the
        count of those moved is said only when there are some."""
        moved = 0
        for order in queryset:
            try:
                service(order_id=order.pk, staff_id=request.user.pk)
                moved += 1
            except DomainError as error:
                self.message_user(
                    request,
                    gettext("Order #%(id)d: %(why)s") % {"id": order.pk, "why": error.message},
                    messages.WARNING,
                )
        if moved:
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
        if not orders:
            # Nothing to confirm: say why instead of showing an empty confirmation page.
            self.message_user(
                request,
                gettext(
                    "None of the selected orders can be cancelled: delivered and cancelled "
                    "orders stay as they are."
                ),
                messages.WARNING,
            )
            return None
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
