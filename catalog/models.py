"""The commissary catalog and its orders.

Products are global (one SKU, one price); each facility offers a product or not and keeps its
own stock. Restrictions bar a category or a product for an inmate, or suspend the inmate's
commissary until a moment. An order is written only by ``catalog.services`` in the same database
transaction as its ledger debit (invariant 7: a kiosk can only debit, at the server's prices).
Stock never goes negative and an order's total equals its lines (CHECKs below and the service).

About 660 lines: products, facility prices and their history, orders, picks and disputes
refer to each other, and most of the length is fields with their translated labels.
"""

import pgtrigger
from django.conf import settings
from django.core.exceptions import ValidationError
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
    price_fen = models.BigIntegerField(
        _("list price (fen)"),
        help_text=_("The price where a facility has filed no price change of its own."),
    )
    unit_zh = models.CharField(_("unit (Chinese)"), max_length=20, blank=True)
    unit_en = models.CharField(_("unit (English)"), max_length=20, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    max_per_order = models.PositiveIntegerField(
        _("most per order"), default=10, help_text=_("The most one order may hold.")
    )

    class Meta:
        verbose_name_plural = _("products")
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
                violation_error_message=_("From 1 to 1,000 per order."),
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
            models.CheckConstraint(
                condition=Q(stock__gte=0),
                name="facility_product_stock_gte_0",
                violation_error_message=_("Stock cannot be below zero."),
            ),
        ]

    def __str__(self):
        return f"{self.product.sku} @ {self.facility.code}: {self.stock}"


class PriceChange(models.Model):
    """A product's cost and price at one facility from an instant on: who filed it, when and
    why. Append-only (a trigger refuses UPDATE and DELETE; a correction is a new change): the
    history the public price list shows and an order line points at.

    The price in force at an instant is the change with the latest ``effective_from`` not after
    it (ties: the latest filed); a product with none is sold at its list price
    (``Product.price_fen``). A cut takes effect when filed; a rise on the facility-local date
    ``effective_on``, at least the facility's notice ahead (``catalog.services.prices``)."""

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    facility_product = models.ForeignKey(
        FacilityProduct,
        on_delete=models.PROTECT,
        related_name="price_changes",
        verbose_name=_("product at the facility"),
        db_index=False,  # the (facility product, effective from) index leads with it
    )
    cost_fen = models.BigIntegerField(_("cost (fen)"))
    price_fen = models.BigIntegerField(_("price (fen)"))
    previous_price_fen = models.BigIntegerField(_("price before (fen)"))
    effective_from = models.DateTimeField(_("in force from"))
    effective_on = models.DateField(_("in force from (local date)"))
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("filed by"),
    )
    created_at = models.DateTimeField(_("filed at"))

    class Meta:
        verbose_name_plural = _("price changes")
        verbose_name = _("price change")
        ordering = ("-effective_from", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(cost_fen__gt=0) & Q(cost_fen__lte=MAX_PRICE_FEN),
                name="price_change_cost_positive",
            ),
            models.CheckConstraint(
                condition=Q(price_fen__gt=0) & Q(price_fen__lte=MAX_PRICE_FEN),
                name="price_change_price_positive",
            ),
            models.CheckConstraint(
                condition=Q(effective_from__gte=models.F("created_at")),
                name="price_change_never_backdated",
            ),
        ]
        indexes = [
            models.Index(
                fields=["facility_product", "-effective_from", "-id"],
                name="price_change_in_force",
            ),
            models.Index(fields=["facility", "-created_at"], name="price_change_facility"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="price_change_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self):
        return _("%(product)s from %(date)s") % {
            "product": self.facility_product_id,
            "date": self.effective_on.isoformat(),
        }

    @property
    def markup_bp(self) -> int:
        """The price over the cost, in basis points (3500 = 35%), rounded down."""
        return (self.price_fen - self.cost_fen) * 10_000 // self.cost_fen


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
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name_plural = _("restrictions")
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

    def clean(self):
        """What the kind needs, said at the field (the database constraint in Meta would only
        name itself: "restriction_kind_matches_target")."""
        errors = {}
        if self.kind == self.Kind.CATEGORY:
            if self.category_id is None:
                errors["category"] = _("Choose the category that is barred.")
            if self.product_id is not None:
                errors["product"] = _("A category bar names no product: leave it empty.")
        elif self.kind == self.Kind.PRODUCT:
            if self.product_id is None:
                errors["product"] = _("Choose the product that is barred.")
            if self.category_id is not None:
                errors["category"] = _("A product bar names no category: leave it empty.")
        elif self.kind == self.Kind.SUSPENSION:
            if self.ends_at is None:
                errors["ends_at"] = _("A suspension needs the date and time it ends.")
            for field in ("category", "product"):
                if getattr(self, f"{field}_id") is not None:
                    errors[field] = _(
                        "A suspension stops all commissary purchases: leave the category and "
                        "the product empty."
                    )
        if errors:
            raise ValidationError(errors)


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
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
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
    placed_response = models.JSONField(
        default=dict, editable=False, verbose_name=_("placed response")
    )
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
        verbose_name=_("handled by"),
    )

    class Meta:
        verbose_name_plural = _("orders")
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
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        related_name="items",
        db_index=False,
        verbose_name=_("order"),
    )
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="+", verbose_name=_("product")
    )
    # The names and price as sold, so a later catalog change never rewrites an old order.
    name_zh = models.CharField(max_length=200, verbose_name=_("name zh"))
    name_en = models.CharField(max_length=200, verbose_name=_("name en"))
    quantity = models.PositiveIntegerField(verbose_name=_("quantity"))
    unit_price_fen = models.BigIntegerField(verbose_name=_("unit price fen"))
    line_total_fen = models.BigIntegerField(verbose_name=_("line total fen"))
    # The price version the line was charged at (none: the product's list price).
    price_change = models.ForeignKey(
        PriceChange,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("price version"),
        db_index=False,  # looked up from the line, never the other way on a hot path
    )
    # What has been given back of this line (short at picking, a dispute): never more than
    # the line cost (a CHECK), moved only with the refund's ledger transaction. The database
    # default lets the order's own insert leave it out.
    refunded_fen = models.BigIntegerField(_("refunded (fen)"), default=0, db_default=0)

    class Meta:
        verbose_name_plural = _("order lines")
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
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=models.F("line_total_fen")),
                name="order_item_refunded_at_most_line_total",
            ),
        ]

    def __str__(self):
        return f"{self.quantity} × {self.name_zh} / {self.name_en}"

    def name(self, language: str | None = None) -> str:
        return localized(self.name_zh, self.name_en, language)


class Dispute(models.Model):
    """An inmate's complaint about a delivered order line, filed at a kiosk (missing, damaged,
    wrong item, overcharged, other), and the staff's decision: refund (all or part of what is
    left of the line, through the ledger), replace, or reject with a reason the inmate sees.
    One open dispute per line (a partial unique index); idempotent per kiosk and key like an
    order; answered by ``deadline``, else escalated (``escalated_at``)."""

    class Reason(models.TextChoices):
        MISSING = "missing", _("Missing")
        DAMAGED = "damaged", _("Damaged")
        WRONG_ITEM = "wrong_item", _("Wrong item")
        OVERCHARGED = "overcharged", _("Overcharged")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        REFUNDED = "refunded", _("Refunded")
        REPLACED = "replaced", _("Replaced")
        REJECTED = "rejected", _("Rejected")

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        related_name="commissary_disputes",
        verbose_name=_("inmate"),
        db_index=False,  # the (inmate, created at) index leads with it
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="disputes", verbose_name=_("order")
    )
    line = models.ForeignKey(
        OrderItem, on_delete=models.PROTECT, related_name="disputes", verbose_name=_("order line")
    )
    device = models.ForeignKey(
        "facilities.KioskDevice",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("kiosk"),
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    text = models.CharField(_("inmate's words"), max_length=500, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    answer = models.CharField(_("answer to the inmate"), max_length=500, blank=True)
    refund_fen = models.BigIntegerField(_("refunded (fen)"), default=0)
    refund = models.ForeignKey(
        "ledger.Transaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("refund transaction"),
    )
    deadline = models.DateTimeField(_("answer by"))
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    created_at = models.DateTimeField(_("filed at"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    idempotency_scope = models.CharField(max_length=40, verbose_name=_("idempotency scope"))
    idempotency_key = models.CharField(max_length=200, verbose_name=_("idempotency key"))
    request_hash = models.CharField(max_length=64, verbose_name=_("request hash"))
    # The kiosk's first answer, kept so a replay of the same key and body gets it back as it was.
    filed_response = models.JSONField(
        default=dict, editable=False, verbose_name=_("filed response")
    )

    class Meta:
        verbose_name_plural = _("disputes")
        verbose_name = _("dispute")
        ordering = ("created_at", "id")  # the queue: oldest first
        constraints = [
            models.UniqueConstraint(
                fields=["line"], condition=Q(status="open"), name="dispute_one_open_per_line"
            ),
            models.UniqueConstraint(
                fields=["idempotency_scope", "idempotency_key"],
                name="dispute_unique_key_per_scope",
            ),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(decided_at__isnull=True))
                | (~Q(status="open") & Q(decided_at__isnull=False)),
                name="dispute_decided_when_not_open",
            ),
            models.CheckConstraint(
                condition=(Q(status="refunded") & Q(refund_fen__gt=0) & Q(refund__isnull=False))
                | (~Q(status="refunded") & Q(refund_fen=0) & Q(refund__isnull=True)),
                name="dispute_refund_only_when_refunded",
            ),
        ]
        indexes = [
            models.Index(fields=["facility", "status", "created_at"], name="dispute_queue"),
            models.Index(fields=["inmate", "created_at"], name="dispute_inmate_created"),
        ]

    def __str__(self):
        return _("Dispute #%(id)s") % {"id": self.pk}


class LineRefund(models.Model):
    """Money given back for (part of) an order line: short at picking (out of stock, damaged,
    restricted) or decided on a dispute. Each has its ledger refund transaction; the line's
    ``refunded_fen`` moves with it, so a line never gives back more than it cost."""

    class Reason(models.TextChoices):
        OUT_OF_STOCK = "out_of_stock", _("Out of stock at picking")
        DAMAGED = "damaged", _("Damaged at picking")
        RESTRICTED = "restricted", _("Restricted at picking")
        DISPUTE = "dispute", _("Dispute")

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="line_refunds", verbose_name=_("order")
    )
    line = models.ForeignKey(
        OrderItem, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("order line")
    )
    quantity = models.PositiveIntegerField(_("units"), null=True, blank=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason.choices)
    dispute = models.OneToOneField(
        Dispute,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="line_refund",
        verbose_name=_("dispute"),
    )
    refund = models.OneToOneField(
        "ledger.Transaction",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("refund transaction"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name_plural = _("line refunds")
        verbose_name = _("line refund")
        ordering = ("created_at", "id")
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="line_refund_positive"),
            # Short at picking: once per line (the pick happens once).
            models.UniqueConstraint(
                fields=["line"], condition=~Q(reason="dispute"), name="line_refund_one_pick"
            ),
        ]

    def __str__(self):
        return _("Refund of %(amount)s fen on line %(line)s") % {
            "amount": self.amount_fen,
            "line": self.line_id,
        }


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
        verbose_name_plural = _("refused orders")
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
