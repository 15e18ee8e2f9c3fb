"""Payments at a provider, one per family deposit. The ledger keeps the deposit and its money;
this keeps what the provider was asked for and what it answered, so reconciliation can check
that every settled payment has a credited or refunded deposit and every credited deposit a
settled payment.

``SandboxCharge`` is the built-in sandbox provider's own book (what a real provider keeps on its
side): the payment page writes it, status polls read it.
"""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Payment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SETTLED = "settled", _("Settled")
        FAILED = "failed", _("Failed")
        # The family left the provider's page without paying: nothing was taken. Its deposit
        # is released as for a failure (``failed``); only the words shown differ.
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    deposit = models.OneToOneField(
        "ledger.Deposit",
        on_delete=models.PROTECT,
        related_name="payment",
        verbose_name=_("deposit"),
    )
    provider = models.CharField(max_length=32, verbose_name=_("provider"))
    provider_reference = models.CharField(max_length=200, verbose_name=_("provider reference"))
    amount_fen = models.BigIntegerField(
        help_text=_("What the family pays: amount plus fee."), verbose_name=_("amount fen")
    )
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))
    settled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("settled at"))
    refunded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("refunded at"))
    receipt_sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("receipt sent at"))
    # Who paid, once the provider confirms it: a keyed hash of the provider's payer id (the id
    # itself is never stored), a masked label a reviewer may read, and the payer's name where
    # the provider returns one (``payments.payers``). The name is monitoring data: blanked
    # after the retention period, while the payment itself is kept.
    payer_fingerprint = models.CharField(
        max_length=64, blank=True, default="", verbose_name=_("payer fingerprint")
    )
    payer_label = models.CharField(max_length=64, blank=True, default="", verbose_name=_("payer"))
    payer_name = models.CharField(
        max_length=128, blank=True, default="", verbose_name=_("payer's name")
    )

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_reference"], name="payment_reference_per_provider"
            ),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="settled") | Q(settled_at__isnull=False),
                name="payment_settled_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="refunded") | Q(refunded_at__isnull=False),
                name="payment_refunded_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="payment_status_age"),
            # The receipt sweep's search: small, since a receipt is normally sent at once.
            models.Index(
                fields=["settled_at"],
                condition=Q(status="settled", receipt_sent_at__isnull=True),
                name="payment_receipt_unsent",
            ),
            # The payment-source rules count one payer's deposits: only known payers.
            models.Index(
                fields=["payer_fingerprint"],
                condition=~Q(payer_fingerprint=""),
                name="payment_payer",
            ),
        ]

    def __str__(self):
        return f"{self.provider} {self.provider_reference} {self.status}"


class SandboxCharge(models.Model):
    """The sandbox provider's side of a payment: what the family did on its payment page."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PAID = "paid", _("Paid")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")
        REFUNDED = "refunded", _("Refunded")

    reference = models.CharField(max_length=64, unique=True, verbose_name=_("reference"))
    amount_fen = models.BigIntegerField(verbose_name=_("amount fen"))
    currency = models.CharField(max_length=3, verbose_name=_("currency"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN, verbose_name=_("status")
    )
    # The sandbox's fake payer id: one per depositor unless a test says otherwise.
    payer_id = models.CharField(max_length=64, blank=True, default="", verbose_name=_("payer id"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("sandbox charge")
        verbose_name_plural = _("sandbox charges")

    def __str__(self):
        return f"sandbox {self.reference} {self.status}"


class MerchantAccount(models.Model):
    """A facility's own merchant account at a real provider (Alipay, WeChat Pay). Facilities
    without one use the account configured in the environment, if any. The keys and secrets
    are stored only encrypted (``payments.credentials``); ``merchant_id`` (Alipay's app id,
    WeChat Pay's mchid) is not secret and is what the admin shows."""

    class Provider(models.TextChoices):
        ALIPAY = "alipay", _("Alipay")
        WECHAT = "wechat", _("WeChat Pay")

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.CASCADE,
        related_name="merchant_accounts",
        verbose_name=_("facility"),
    )
    provider = models.CharField(max_length=16, choices=Provider.choices, verbose_name=_("provider"))
    is_enabled = models.BooleanField(default=True, verbose_name=_("is enabled"))
    merchant_id = models.CharField(max_length=64, verbose_name=_("merchant id"))
    secrets_encrypted = models.TextField(editable=False, verbose_name=_("secrets encrypted"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("merchant account")
        verbose_name_plural = _("merchant accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["facility", "provider"], name="merchant_account_per_facility_provider"
            )
        ]

    def __str__(self):
        return f"{self.get_provider_display()} {self.merchant_id}"


class ProviderCheckout(models.Model):
    """What a real provider gave the family to pay with (a payment page URL, WeChat Pay's
    ``code_url`` or ``h5_url``), kept so a reloaded payment page shows the same one, and
    the merchant account the order was placed under, so callbacks, polls and refunds use
    that account even if the facility's settings change meanwhile."""

    payment = models.ForeignKey(
        Payment, on_delete=models.CASCADE, related_name="checkouts", verbose_name=_("payment")
    )
    kind = models.CharField(max_length=16, verbose_name=_("kind"))  # page, wap, native, h5
    merchant_id = models.CharField(max_length=64, verbose_name=_("merchant id"))
    pay_url = models.TextField(verbose_name=_("pay url"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("provider checkout")
        verbose_name_plural = _("provider checkouts")
        constraints = [
            models.UniqueConstraint(fields=["payment", "kind"], name="checkout_per_payment_kind")
        ]

    def __str__(self):
        return f"{self.kind} checkout of payment {self.payment_id}"


class ProviderCall(models.Model):
    """The provider outbox: a call to a provider (a refund, closing an order, a status query)
    decided inside a money transaction and made after it commits, never while an inmate's
    accounts are locked. The row is written in the deciding transaction, so the decision and
    the call to make stand or fall together; ``payments.services.outbox`` makes the call,
    retries it with backoff and records each failure. ``request_number`` is fixed when the row
    is written (Alipay's ``out_request_no``, WeChat Pay's ``out_refund_no``), so a call made
    twice (a retry after a lost answer, two workers) is one refund at the provider."""

    class Kind(models.TextChoices):
        REFUND = "refund", _("Refund")
        CLOSE = "close", _("Close the order")
        QUERY = "query", _("Query the status")

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        GAVE_UP = "gave_up", _("Gave up: needs staff")

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="provider_calls", verbose_name=_("payment")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    request_number = models.CharField(_("request number"), max_length=64)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"))
    created_at = models.DateTimeField(_("created"))
    done_at = models.DateTimeField(_("done"), null=True, blank=True)

    class Meta:
        verbose_name = _("provider call")
        verbose_name_plural = _("provider calls")
        permissions = [("retry_providercall", _("Can retry a provider call now"))]
        constraints = [
            # One call of a kind per payment: a refund returns the whole amount, once.
            models.UniqueConstraint(fields=["payment", "kind"], name="provider_call_per_kind"),
            models.CheckConstraint(
                condition=~Q(state="done") | Q(done_at__isnull=False),
                name="provider_call_done_has_time",
            ),
        ]
        indexes = [
            # The sweep's search: only calls still to make.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="provider_call_due",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.request_number} ({self.get_state_display()})"
