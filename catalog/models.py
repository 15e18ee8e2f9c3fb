"""The commissary catalog and its orders.

Products are global (one SKU, one price); each facility offers a product or not and keeps its
own stock. Restrictions bar a category or a product for an inmate, or suspend the inmate's
commissary until a moment. An order is written only by ``catalog.services`` in the same database
transaction as its ledger debit (invariant 7: a kiosk can only debit, at the server's prices).
Stock never goes negative and an order's total equals its lines (CHECKs below and the service).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from facilities.models import Inmate
from ledger.models import IdempotentRecord


class Category(models.Model):
    code = models.SlugField(_("code"), max_length=32, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ("sort_order", "code")

    def __str__(self):
        return f"{self.name_zh} / {self.name_en}"

    def name(self, language: str | None = None) -> str:
        return localized(self.name_zh, self.name_en, language)


def localized(name_zh: str, name_en: str, language: str | None = None) -> str:
    """The Chinese name for a Chinese request, else the English one."""
    language = language or get_language() or "zh-hans"
    return name_zh if language.lower().startswith("zh") else name_en


MAX_PRICE_FEN = 10**9  # ¥10,000,000.00, the catalogue's own ceiling


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=32, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category")
    )
    price_fen = models.BigIntegerField(_("price (fen)"))
    is_active = models.BooleanField(_("active"), default=True)
    max_per_order = models.PositiveIntegerField(
        _("most per order"), default=10, help_text=_("The most one order may hold.")
    )

    class Meta:
        verbose_name = _("product")
        ordering = ("category__sort_order", "sku")
        constraints = [
            models.CheckConstraint(
                condition=Q(price_fen__gt=0) & Q(price_fen__lte=MAX_PRICE_FEN),
                name="product_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_per_order__gte=1) & Q(max_per_order__lte=1000),
                name="product_max_per_order_range",
            ),
        ]

    def __str__(self):
        return f"{self.sku} {self.name_zh} / {self.name_en}"

    def name(self, language: str | None = None) -> str:
        return localized(self.name_zh, self.name_en, language)


class FacilityProduct(models.Model):
    """A product as one facility offers it: whether it is on sale there, and its stock."""

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="offers", verbose_name=_("product")
    )
    is_available = models.BooleanField(_("on sale here"), default=True)
    stock = models.IntegerField(_("stock"), default=0)

    class Meta:
        verbose_name = _("stock at a facility")
        verbose_name_plural = _("stock at facilities")
        constraints = [
            models.UniqueConstraint(fields=["facility", "product"], name="facility_product_unique"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="facility_product_stock_gte_0"),
        ]

    def __str__(self):
        return f"{self.product.sku} @ {self.facility.code}: {self.stock}"


class Restriction(models.Model):
    """A category or a product barred for an inmate, or the inmate's commissary suspended,
    from now until ``ends_at`` (a bar without an end lasts until staff lift it)."""

    class Kind(models.TextChoices):
        CATEGORY = "category", _("Category barred")
        PRODUCT = "product", _("Product barred")
        SUSPENSION = "suspension", _("Commissary suspended")

    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="commissary_restrictions",
        verbose_name=_("inmate"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("category")
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, verbose_name=_("product")
    )
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("restriction")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="category", category__isnull=False, product__isnull=True)
                    | Q(kind="product", product__isnull=False, category__isnull=True)
                    | Q(
                        kind="suspension",
                        ends_at__isnull=False,
                        category__isnull=True,
                        product__isnull=True,
                    )
                ),
                name="restriction_kind_matches_target",
            )
        ]

    def __str__(self):
        target = self.category or self.product or _("commissary")
        return f"{self.inmate}: {self.get_kind_display()} ({target})"


class Order(IdempotentRecord):
    class Status(models.TextChoices):
        PLACED = "placed", _("Placed")
        PICKED = "picked", _("Picked")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")

    # Indexes: every one is written with each order, so none repeats another. The facility
    # and the inmate are the first columns of the composite indexes below; the refund and the
    # staff member are indexed only where set (most orders have neither).
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
        db_index=False,
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="commissary_orders",
        verbose_name=_("inmate"),
        db_index=False,
    )
    device = models.ForeignKey(
        "facilities.KioskDevice",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("kiosk"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PLACED
    )
    total_fen = models.BigIntegerField(_("total (fen)"))
    currency = models.CharField(max_length=3)
    purchase = models.ForeignKey(
        "ledger.Transaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("purchase transaction"),
    )
    refund = models.ForeignKey(
        "ledger.Transaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("refund transaction"),
        db_index=False,
    )
    # The kiosk's first answer, kept so a replay of the same key and body gets it back as it was.
    placed_response = models.JSONField(default=dict, editable=False)
    created_at = models.DateTimeField(_("placed at"))
    picked_at = models.DateTimeField(_("picked at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.CharField(_("why cancelled"), max_length=200, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        verbose_name = _("order")
        ordering = ("-created_at", "-id")
        constraints = [
            IdempotentRecord.unique_key("order_unique_key_per_scope"),
            models.CheckConstraint(condition=Q(total_fen__gt=0), name="order_total_positive"),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False, refund__isnull=False)
                | (~Q(status="cancelled") & Q(cancelled_at__isnull=True, refund__isnull=True)),
                name="order_cancelled_has_refund",
            ),
        ]
        indexes = [
            models.Index(fields=["inmate", "created_at"], name="order_inmate_created"),
            models.Index(fields=["facility", "status"], name="order_facility_status"),
            models.Index(fields=["refund"], name="order_refund", condition=Q(refund__isnull=False)),
            models.Index(
                fields=["handled_by"],
                name="order_handled_by",
                condition=Q(handled_by__isnull=False),
            ),
        ]

    def __str__(self):
        return _("Order #%(id)s") % {"id": self.pk}


class OrderItem(models.Model):
    # Looked up by the unique (order, product) index: no index of its own.
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="items", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    # The names and price as sold, so a later catalog change never rewrites an old order.
    name_zh = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price_fen = models.BigIntegerField()
    line_total_fen = models.BigIntegerField()

    class Meta:
        verbose_name = _("order line")
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="order_item_one_per_product"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_item_quantity_gte_1"),
            models.CheckConstraint(
                condition=Q(unit_price_fen__gt=0), name="order_item_unit_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(line_total_fen=models.F("unit_price_fen") * models.F("quantity")),
                name="order_item_line_total_is_price_times_quantity",
            ),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.name_zh} / {self.name_en}"

    def name(self, language: str | None = None) -> str:
        return localized(self.name_zh, self.name_en, language)


class RefusedOrder(IdempotentRecord):
    """An order a kiosk sent that was taken up and refused: too little money, over the
    spending limit, out of stock, restricted, a frozen or closed account, a product not sold
    here. Kept under its key, so a replay of the same key and body gets the same refusal back
    (the contract: "a replay returns the stored status and body") and the key can never place
    another order. A body refused by validation (400) was never taken up and is not kept.
    Staff see it as the inmate's attempt to buy."""

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate", on_delete=models.PROTECT, related_name="+", verbose_name=_("inmate")
    )
    device = models.ForeignKey(
        "facilities.KioskDevice",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("kiosk"),
    )

    class Reason(models.TextChoices):
        INSUFFICIENT_FUNDS = "insufficient_funds", _("Not enough money")
        SPENDING_LIMIT_EXCEEDED = "spending_limit_exceeded", _("Over the spending limit")
        OUT_OF_STOCK = "out_of_stock", _("Out of stock")
        PRODUCT_RESTRICTED = "product_restricted", _("Restricted")
        ACCOUNT_FROZEN = "account_frozen", _("Account frozen")
        INMATE_RELEASED = "inmate_released", _("Released")
        NOT_FOUND = "not_found", _("Not sold here")

    # The first answer: the error's code and message, as the kiosk received them.
    code = models.CharField(_("reason"), max_length=40, choices=Reason.choices)
    message = models.TextField(_("message"))
    created_at = models.DateTimeField(_("refused at"))

    class Meta:
        verbose_name = _("refused order")
        ordering = ("-created_at", "-id")
        constraints = [
            IdempotentRecord.unique_key("refused_order_unique_key_per_scope"),
        ]
        indexes = [
            models.Index(fields=["inmate", "created_at"], name="refused_order_inmate_created"),
        ]

    def __str__(self):
        return _("Refused order %(key)s") % {"key": self.idempotency_key}


class InmateCommissary(Inmate):
    """The inmate as commissary staff see it (grade, restrictions, ID card), a proxy so that
    the commissary admin stays apart from the inmate records admin."""

    class Meta:
        proxy = True
        verbose_name = _("inmate's commissary")
        verbose_name_plural = _("inmates' commissary")
