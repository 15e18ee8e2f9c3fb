"""Prices in the admin: the history of price changes (read-only, append-only), filing a new one
with a reason through ``catalog.services.prices``, and the report of products by markup.
Everything is scoped to the staff member's facilities."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin, scope_queryset
from commissary.errors import DomainError
from commissary.money import format_fen
from ledger.forms import YuanField

from .. import selectors
from ..models import FacilityProduct, PriceChange
from ..services import prices


class PriceChangeForm(forms.Form):
    facility_product = forms.ModelChoiceField(
        label=_("Product at the facility"), queryset=FacilityProduct.objects.none()
    )
    cost = YuanField(label=_("Cost"), help_text=_("What the commissary pays, in yuan."))
    price = YuanField(label=_("Price"), help_text=_("What inmates pay, in yuan."))
    effective_on = forms.DateField(
        label=_("Rise takes effect on"),
        required=False,
        help_text=_(
            "Only for a rise: a facility-local date, no earlier than the facility's notice "
            "allows (empty: the earliest). A cut takes effect at once."
        ),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)


@admin.register(PriceChange)
class PriceChangeAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = (
        "effective_on",
        "product",
        "facility",
        "previous_price",
        "price",
        "cost",
        "markup",
        "reason",
        "created_by",
        "created_at",
    )
    list_filter = ("facility", "effective_on")
    search_fields = (
        "facility_product__product__sku",
        "facility_product__product__name_zh",
        "facility_product__product__name_en",
        "reason",
    )
    list_select_related = ("facility", "facility_product__product", "created_by")
    date_hierarchy = "created_at"
    fields = (
        "facility",
        "facility_product",
        "previous_price",
        "price",
        "cost",
        "markup",
        "effective_on",
        "effective_from",
        "reason",
        "created_by",
        "created_at",
    )
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        return False  # the history is append-only: a correction is a new change

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("product"))
    def product(self, change):
        return change.facility_product.product

    @admin.display(description=_("price before"))
    def previous_price(self, change):
        return format_fen(change.previous_price_fen, change.facility.currency)

    @admin.display(description=_("price"), ordering="price_fen")
    def price(self, change):
        return format_fen(change.price_fen, change.facility.currency)

    @admin.display(description=_("cost"))
    def cost(self, change):
        return format_fen(change.cost_fen, change.facility.currency)

    @admin.display(description=_("markup"))
    def markup(self, change):
        return f"{change.markup_bp / 100:.2f}%"

    def get_urls(self):
        return [
            path(
                "markup/",
                self.admin_site.admin_view(self.markup_view),
                name="catalog_pricechange_markup",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        """File a price change: the service decides (markup cap, notice for a rise) and its
        refusal is shown on the form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = PriceChangeForm(
            request.POST if request.method == "POST" else None,
            initial={"facility_product": request.GET.get("facility_product")},
        )
        form.fields["facility_product"].queryset = scope_queryset(
            FacilityProduct.objects.select_related("product", "facility"),
            request.user,
            "facility",
        ).order_by("facility__code", "product__sku")
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                change = prices.file_price_change(
                    facility_product_id=data["facility_product"].pk,
                    cost_fen=data["cost"],
                    price_fen=data["price"],
                    effective_on=data["effective_on"],
                    reason=data["reason"],
                    staff_id=request.user.pk,
                )
            except DomainError as refused:
                form.add_error(None, refused.message)
            else:
                self.log_addition(request, change, [{"added": {}}])
                self.message_user(
                    request,
                    gettext("The price %(price)s takes effect on %(date)s.")
                    % {
                        "price": format_fen(change.price_fen, change.facility.currency),
                        "date": change.effective_on.isoformat(),
                    },
                )
                return HttpResponseRedirect(reverse("admin:catalog_pricechange_changelist"))
        return TemplateResponse(
            request,
            "admin/catalog/price_change_form.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("File a price change"),
                "opts": self.model._meta,
                "form": form,
                "media": self.media + form.media,
            },
        )

    def markup_view(self, request):
        """Products by markup, highest first: the price in force now against its cost."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        offers = scope_queryset(
            FacilityProduct.objects.select_related("product", "facility"), request.user, "facility"
        )
        rows = selectors.products_by_markup(offers=offers, now=timezone.now())
        return TemplateResponse(
            request,
            "admin/catalog/markup_report.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Products by markup"),
                "opts": self.model._meta,
                "rows": rows,
            },
        )
