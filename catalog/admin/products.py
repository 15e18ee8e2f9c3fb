"""The catalogue: categories and products (one for every facility, prices typed in yuan) and
each facility's stock and availability (scoped)."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from commissary.money import format_fen
from ledger.forms import YuanAmountsForm, YuanField

from ..models import (
    MAX_PRICE_FEN,
    Category,
    FacilityProduct,
    Product,
)


@admin.register(Category)
class CategoryAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    scope_global = True  # one catalogue for every facility
    list_display = ("code", "name_zh", "name_en", "sort_order")


class FacilityProductInline(FacilityScopedAdmin, admin.TabularInline):
    model = FacilityProduct
    extra = 0


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
