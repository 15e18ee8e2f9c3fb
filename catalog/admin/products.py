"""The catalogue: categories and products (one for every facility, prices typed in yuan) and
each facility's stock and availability (scoped).

A new product's list price needs its cost, is refused over the markup cap of any facility it is
offered at on the same page, and is filed as the first version of each of those facilities'
price history (``catalog.services.prices.file_first_prices``). Changing it later is a price
change like any other: with the cost and a reason, refused over a facility's markup cap, and
filed in the price history of every facility that sells the product at its list price
(``catalog.services.prices.change_list_price``), never a bare field edit."""

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin, user_facility_ids
from commissary.errors import DomainError
from commissary.money import format_fen
from ledger.forms import YuanAmountsForm, YuanField

from ..models import (
    MAX_PRICE_FEN,
    Category,
    FacilityProduct,
    Product,
)
from ..services import prices


@admin.register(Category)
class CategoryAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    scope_global = True  # one catalogue for every facility
    list_display = ("code", "name_zh", "name_en", "sort_order")


class OffersFormSet(BaseInlineFormSet):
    """The facilities a product is offered at. On a new product, each must allow its first
    list price over its cost: the product form hands the cost over as ``first_cost_fen`` on
    the (still unsaved) product, and the formset is validated after the form."""

    def clean(self):
        super().clean()
        product = self.instance
        cost_fen = getattr(product, "first_cost_fen", None)
        if product.pk is not None or cost_fen is None or not product.price_fen:
            return
        for form in self.forms:
            facility = getattr(form, "cleaned_data", {}).get("facility")
            if facility is None or form.cleaned_data.get("DELETE"):
                continue
            try:
                prices.refuse_over_markup_cap(
                    facility=facility, cost_fen=cost_fen, price_fen=product.price_fen
                )
            except DomainError as refused:
                raise forms.ValidationError(f"{facility}: {refused.message}") from None


class FacilityProductInline(FacilityScopedAdmin, admin.TabularInline):
    model = FacilityProduct
    formset = OffersFormSet
    extra = 0


class ProductForm(YuanAmountsForm):
    yuan_amounts = {"price": "price_fen"}
    price = YuanField(
        label=_("List price"),
        help_text=_(
            "In yuan. Sold at this price where a facility has filed no price change of its own "
            "(File a price change: the facility's price, with its history)."
        ),
    )

    class Meta:
        model = Product
        fields = (
            "sku",
            "name_zh",
            "name_en",
            "unit_zh",
            "unit_en",
            "category",
            "is_active",
            "max_per_order",
        )

    # On a new product, its first cost (and an optional reason); on an existing one, only when
    # its list price changes: the change's cost and reason.
    cost = YuanField(
        label=_("Cost"),
        required=False,
        help_text=_(
            "For a new product, and when you change the list price: what the commissary pays, "
            "in yuan."
        ),
    )
    reason = forms.CharField(
        label=_("Reason for the price change"),
        max_length=200,
        required=False,
        help_text=_(
            "When you change the list price (optional for a new product): kept in the price "
            "history of every facility selling the product at its list price."
        ),
    )

    facility_ids: set[int] | None = None  # the editor's facilities (None: all), set per request

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.list_price_before_fen = self.instance.price_fen if self.instance.pk else None

    def clean_price(self):
        price_fen = self.cleaned_data["price"]
        if price_fen is not None and price_fen > MAX_PRICE_FEN:
            raise forms.ValidationError(
                _("A price is at most %(amount)s.") % {"amount": format_fen(MAX_PRICE_FEN)}
            )
        return price_fen

    def changes_list_price(self) -> bool:
        price_fen = self.cleaned_data.get("price")
        return self.list_price_before_fen not in (None, price_fen) and price_fen is not None

    def clean(self):
        cleaned_data = super().clean()
        if self.instance.pk is None:
            return self._clean_first_price(cleaned_data)
        if not self.changes_list_price():
            return cleaned_data
        for field in ("cost", "reason"):
            if not cleaned_data.get(field) and field not in self.errors:
                self.add_error(
                    field, _("A new list price is a price change: it needs the cost and a reason.")
                )
        at_list_price = prices.offers_at_list_price(product_id=self.instance.pk)
        if (
            self.facility_ids is not None
            and at_list_price.exclude(facility_id__in=self.facility_ids).exists()
        ):
            self.add_error(
                "price",
                _(
                    "Facilities you do not manage also sell this product at its list price: "
                    "file a price change for your own facilities instead."
                ),
            )
        elif cleaned_data.get("cost"):
            try:
                prices.check_list_price_change(
                    product_id=self.instance.pk,
                    cost_fen=cleaned_data["cost"],
                    price_fen=cleaned_data["price"],
                )
            except DomainError as refused:
                self.add_error("price", refused.message)
        return cleaned_data

    def _clean_first_price(self, cleaned_data):
        """A new product's first price needs its cost; the markup caps of the facilities it is
        offered at are checked by the offers' formset, which gets the cost from here."""
        cost_fen = cleaned_data.get("cost")
        if cost_fen is None:
            if "cost" not in self.errors:
                self.add_error("cost", _("A new product's price needs its cost."))
        elif cost_fen > MAX_PRICE_FEN:
            self.add_error(
                "cost", _("A price is at most %(amount)s.") % {"amount": format_fen(MAX_PRICE_FEN)}
            )
        else:
            self.instance.first_cost_fen = cost_fen
        return cleaned_data


@admin.register(Product)
class ProductAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    scope_global = True  # one catalogue; stock and availability are per facility (scoped)
    form = ProductForm
    fields = (
        "sku",
        "name_zh",
        "name_en",
        "unit_zh",
        "unit_en",
        "category",
        "price",
        "is_active",
        "max_per_order",
    )
    list_display = ("sku", "name_zh", "name_en", "category", "price", "is_active", "max_per_order")
    list_filter = ("category", "is_active")
    search_fields = ("sku", "name_zh", "name_en")
    inlines = [FacilityProductInline]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.facility_ids = user_facility_ids(request)
        return form

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        # A new product's first price, and a change of the list price, need the cost and reason
        # (not shown to a reader who may only view the product: they are not the product's).
        may_edit = (
            self.has_add_permission(request)
            if obj is None
            else self.has_change_permission(request, obj)
        )
        if may_edit:
            at = fields.index("price") + 1
            fields[at:at] = ["cost", "reason"]
        return fields

    def save_related(self, request, form, formsets, change):
        """Once a new product's offers are saved, its first price is filed in each offering
        facility's price history, with the cost typed (the caps were checked by the form)."""
        super().save_related(request, form, formsets, change)
        if not change:
            prices.file_first_prices(
                product_id=form.instance.pk,
                cost_fen=form.cleaned_data["cost"],
                reason=form.cleaned_data.get("reason") or "",
                staff_id=request.user.pk,
            )

    def save_model(self, request, obj, form, change):
        """The other fields are saved as typed; a new list price goes through the price
        history (``prices.change_list_price``), which sets it."""
        if not (change and form.changes_list_price()):
            super().save_model(request, obj, form, change)
            return
        new_price_fen = obj.price_fen
        obj.price_fen = form.list_price_before_fen
        super().save_model(request, obj, form, change)
        try:
            prices.change_list_price(
                product_id=obj.pk,
                cost_fen=form.cleaned_data["cost"],
                price_fen=new_price_fen,
                reason=form.cleaned_data["reason"],
                staff_id=request.user.pk,
            )
        except DomainError as refused:  # a facility's cap changed since the form was checked
            self.message_user(request, refused.message, messages.ERROR)
            return
        obj.price_fen = new_price_fen

    @admin.display(description=_("list price"), ordering="price_fen")
    def price(self, product):
        return format_fen(product.price_fen)


@admin.register(FacilityProduct)
class FacilityProductAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("product", "facility", "is_available", "stock")
    list_editable = ("is_available", "stock")
    list_filter = ("facility", "is_available")
    search_fields = ("product__sku", "product__name_zh", "product__name_en")
