"""The catalogue: categories and products (one for every facility, prices typed in yuan) and
each facility's stock and availability (scoped).

A new product's list price needs its cost, is refused over the markup cap of any facility it is
offered at on the same page, and is filed as the first version of each of those facilities'
price history (``catalog.services.prices.file_first_prices``). Changing it later is a price
change like any other: with the cost and a reason, refused over a facility's markup cap, and
filed in the price history of every facility that sells the product at its list price
(``catalog.services.prices.change_list_price``), never a bare field edit. A facility that
starts selling a product that already exists (a new row of the product's facilities, or a new
stock entry) gives the cost, is refused over its markup cap, and files version 1 of its own
price history (``catalog.services.prices.start_selling``)."""

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet, InlineForeignKeyField
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


class OfferForm(forms.ModelForm):
    """A facility's offer of a product (its stock, on sale or not). A new offer of a product
    that already exists, i.e. a facility starting to sell it, needs the cost: it is filed with
    the price (the list price unless one is typed) as version 1 of that facility's price
    history, refused over the facility's markup cap (``prices.start_selling``). A new product's
    offers take its own first price instead (``OffersFormSet``). An offer's facility and
    product never change: another facility starting to sell it is a new offer."""

    first_price_fields = ("cost", "price", "reason")
    cost = YuanField(
        label=_("Cost"),
        required=False,
        help_text=_("When the facility starts selling the product: what it pays, in yuan."),
    )
    price = YuanField(
        label=_("Price"),
        required=False,
        help_text=_(
            "When the facility starts selling the product: what inmates pay, in yuan "
            "(empty: the list price)."
        ),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        required=False,
        help_text=_("Kept in the facility's price history (optional)."),
    )

    class Meta:
        model = FacilityProduct
        fields = ("facility", "product", "is_available", "stock")

    # The product whose offers these are, as its form leaves it (an inline's; its list price
    # may change on the same page), set by ``OffersFormSet``.
    parent_product: Product | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:  # an offer already made: its first price is filed
            for name in ("facility", "product", *self.first_price_fields):
                if name in self.fields:
                    self.fields[name].disabled = True

    def starts_selling(self) -> bool:
        """A new offer of a product that already exists (not of a product being added). On
        the product's page, the product is the page's (``parent_product``, set once the row is
        made: read when cleaning and saving, never in ``__init__``)."""
        if self.instance.pk is not None:
            return False
        if isinstance(self.fields.get("product"), InlineForeignKeyField):
            return self.parent_product is not None
        return True

    def clean(self):
        cleaned_data = super().clean()
        if not self.starts_selling():
            return cleaned_data
        cost_fen, price_fen = cleaned_data.get("cost"), cleaned_data.get("price")
        if cost_fen is None:
            if "cost" not in self.errors:
                self.add_error(
                    "cost", _("A facility that starts selling a product needs the product's cost.")
                )
            return cleaned_data
        product = self.parent_product or cleaned_data.get("product")
        facility = cleaned_data.get("facility")
        if product is None or facility is None:
            return cleaned_data
        for name, amount_fen in (("cost", cost_fen), ("price", price_fen)):
            if amount_fen is not None and amount_fen > MAX_PRICE_FEN:
                self.add_error(
                    name,
                    _("A price is at most %(amount)s.") % {"amount": format_fen(MAX_PRICE_FEN)},
                )
                return cleaned_data
        try:
            prices.refuse_over_markup_cap(
                facility=facility,
                cost_fen=cost_fen,
                price_fen=product.price_fen if price_fen is None else price_fen,
            )
        except DomainError as refused:
            self.add_error("price" if price_fen is not None else "cost", refused.message)
        return cleaned_data

    def start_selling(self, *, staff_id: int | None) -> FacilityProduct:
        """File the offer and its first price (the form is valid and ``starts_selling``)."""
        data = self.cleaned_data
        return prices.start_selling(
            facility_id=data["facility"].pk,
            product_id=(self.parent_product or data["product"]).pk,
            cost_fen=data["cost"],
            price_fen=data.get("price"),
            reason=data.get("reason") or "",
            stock=data.get("stock") or 0,
            is_available=data.get("is_available", True),
            staff_id=staff_id,
        )


class OffersFormSet(BaseInlineFormSet):
    """The facilities a product is offered at. On a new product, each must allow its first
    list price over its cost: the product form hands the cost over as ``first_cost_fen`` on
    the (still unsaved) product, and the formset is validated after the form. On an existing
    product, a new row is a facility starting to sell it (``OfferForm``)."""

    staff_id: int | None = None  # who saves, set by the product admin before saving

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if self.instance.pk is not None:
            form.parent_product = self.instance
        return form

    def save_new(self, form, commit=True):
        if commit and form.starts_selling():
            return form.start_selling(staff_id=self.staff_id)
        return super().save_new(form, commit=commit)

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
    form = OfferForm
    formset = OffersFormSet
    extra = 0

    def get_fields(self, request, obj=None):
        # On an existing product, a new row starts a facility selling it: its cost, price and
        # reason (shown, disabled, on the rows already there; not at all to a reader who may
        # add none). A new product's rows take its own first price.
        fields = ["facility", "is_available", "stock"]
        if obj is None or not self.has_add_permission(request, obj):
            return fields
        return [*fields, *OfferForm.first_price_fields]


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

    def save_formset(self, request, form, formset, change):
        formset.staff_id = request.user.pk  # a facility starting to sell files its first price
        super().save_formset(request, form, formset, change)

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
    """Stock and availability at the staff member's facilities. Adding an offer starts the
    facility selling the product: with the cost, under its markup cap, filed as version 1 of
    its price history (``OfferForm``)."""

    form = OfferForm
    list_display = ("product", "facility", "is_available", "stock")
    list_editable = ("is_available", "stock")
    list_filter = ("facility", "is_available")
    search_fields = ("product__sku", "product__name_zh", "product__name_en")

    def get_fields(self, request, obj=None):
        fields = ["facility", "product", "is_available", "stock"]
        return [*fields, *OfferForm.first_price_fields] if obj is None else fields

    def get_readonly_fields(self, request, obj=None):
        return ("facility", "product") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        offer = form.start_selling(staff_id=request.user.pk)
        obj.pk, obj._state.adding = offer.pk, False
