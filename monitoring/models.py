"""Sender and inmate monitoring: rules stored as data, deposits held before credit, and every
decision on record.

A ``Rule`` is what a security officer keeps for a facility (a kind and its thresholds); every
change writes a new ``RuleVersion`` (append-only), and a ``Hold`` records the versions that
fired. A held deposit keeps its room reserved under both caps (``ledger``'s ``held`` status),
so the caps hold while it waits; only accept (credit) or reject (refund) ends it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Rule(models.Model):
    class Kind(models.TextChoices):
        MONITORED_DEPOSITOR = "monitored_depositor", _("Monitored depositor")
        MONITORED_INMATE = "monitored_inmate", _("Monitored inmate")
        AMOUNT_AT_LEAST = "amount_at_least", _("Amount at least")
        NOT_WHOLE_YUAN = "not_whole_yuan", _("Amount not in whole yuan")
        DEPOSITS_FROM_DEPOSITOR = (
            "deposits_from_depositor",
            _("More than N deposits from one depositor in D days"),
        )
        DEPOSITORS_TO_INMATE = (
            "depositors_to_inmate",
            _("More than N depositors to one inmate in D days"),
        )
        INMATES_FROM_DEPOSITOR = (
            "inmates_from_depositor",
            _("One depositor to more than N inmates in D days"),
        )
        NEAR_MONTHLY_CAP = (
            "near_monthly_cap",
            _("Brings the month's deposits within X percent of the cap"),
        )
        NEW_DEPOSITOR = "new_depositor", _("Depositor account younger than D days")
        MONITORED_SOURCE = "monitored_source", _("Monitored payment source")
        DEPOSITS_FROM_SOURCE = (
            "deposits_from_source",
            _("More than N deposits from one payment source in D days"),
        )
        SOURCES_TO_INMATE = (
            "sources_to_inmate",
            _("More than N payment sources to one inmate in D days"),
        )
        INMATES_FROM_SOURCE = (
            "inmates_from_source",
            _("One payment source to more than N inmates in D days"),
        )
        DEPOSITORS_FROM_SOURCE = (
            "depositors_from_source",
            _("One payment source used by more than N depositors in D days"),
        )

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="monitoring_rules",
        verbose_name=_("facility"),
    )
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    depositor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("depositor"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("inmate"),
    )
    # A watched payment source: the keyed hash of the provider's payer id
    # (``payments.payers.fingerprint``), never the id, and the masked label it was entered as.
    payer_fingerprint = models.CharField(
        _("payment source (keyed hash)"), max_length=64, blank=True, default=""
    )
    payer_label = models.CharField(_("payment source"), max_length=64, blank=True, default="")
    amount_fen = models.BigIntegerField(_("amount"), null=True, blank=True)
    count = models.PositiveIntegerField(_("N (count)"), null=True, blank=True)
    days = models.PositiveIntegerField(_("D (days)"), null=True, blank=True)
    percent = models.PositiveSmallIntegerField(_("X (percent)"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    version = models.PositiveIntegerField(_("version"), default=0, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(null=True)

    class Meta:
        verbose_name = _("monitoring rule")
        verbose_name_plural = _("monitoring rules")
        indexes = [models.Index(fields=["facility", "is_active"], name="rule_facility_active")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_fen__isnull=True) | Q(amount_fen__gt=0),
                name="rule_amount_positive",
            ),
            models.CheckConstraint(
                condition=Q(percent__isnull=True) | Q(percent__lte=100),
                name="rule_percent_at_most_100",
                violation_error_message=_("At most 100 percent."),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} (v{self.version})"


class RuleVersion(models.Model):
    """A rule as it was from ``changed_at`` on: written once per change, never edited."""

    rule = models.ForeignKey(
        Rule, on_delete=models.PROTECT, related_name="versions", verbose_name=_("rule")
    )
    version = models.PositiveIntegerField(_("version"))
    kind = models.CharField(_("kind"), max_length=32, choices=Rule.Kind.choices)
    parameters = models.JSONField(_("parameters"))
    is_active = models.BooleanField(_("active"))
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("changed by"),
    )
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("rule version")
        verbose_name_plural = _("rule versions")
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="rule_version_once")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} (v{self.version})"


class Hold(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Being reviewed")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")
        TIMED_OUT = "timed_out", _("Refunded, not decided in time")

    class Reason(models.TextChoices):
        SEVERAL_INMATES = "several_inmates", _("Pays several inmates")
        SEVERAL_SOURCES = "several_sources", _("Paid from several sources")
        WATCHED_PARTY = "watched_party", _("Linked to a watched party")
        UNIDENTIFIED_SOURCE = "unidentified_source", _("Unidentified source")
        POTENTIAL_FRAUD = "potential_fraud", _("Potential fraud")
        INTELLIGENCE_REPORT = "intelligence_report", _("Intelligence report (number in text)")
        OTHER = "other", _("Other (say why in the text)")

    deposit = models.OneToOneField(
        "ledger.Deposit", on_delete=models.PROTECT, related_name="hold", verbose_name=_("deposit")
    )
    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    inmate = models.ForeignKey(
        "facilities.Inmate", on_delete=models.PROTECT, related_name="+", verbose_name=_("inmate")
    )
    depositor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("depositor"),
    )
    amount_fen = models.BigIntegerField(_("amount"))
    fired = models.ManyToManyField(RuleVersion, related_name="holds", verbose_name=_("rules fired"))
    state = models.CharField(
        _("state"), max_length=16, choices=State.choices, default=State.PENDING
    )
    created_at = models.DateTimeField(_("held at"))
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assigned to"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    reason_text = models.TextField(_("reason text"), blank=True)

    class Meta:
        verbose_name = _("held deposit")
        verbose_name_plural = _("deposits to review")
        permissions = [("decide_hold", _("Can accept or reject held deposits"))]
        indexes = [models.Index(fields=["facility", "state", "created_at"], name="hold_queue")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state="pending", decided_at__isnull=True)
                | (~Q(state="pending") & Q(decided_at__isnull=False)),
                name="hold_decided_at_matches_state",
            ),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="hold_amount_positive"),
        ]

    def __str__(self):
        return str(_("Held deposit %(reference)s") % {"reference": self.deposit.reference})


class AutoAccept(models.Model):
    """A depositor ↔ inmate or payment source ↔ inmate pair whose deposits skip the rules it
    names (``skipped_kinds``, rule kinds; none named: every rule), while the others still fire
    and hold; switched off, never deleted, so its on/off history and every change of what it
    skips stay in the audit trail. A source is the keyed hash of the provider's payer id
    (``payments.payers``), never the id."""

    facility = models.ForeignKey(
        "facilities.Facility",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("facility"),
    )
    depositor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("depositor"),
    )
    payer_fingerprint = models.CharField(
        _("payment source (keyed hash)"), max_length=64, blank=True, default=""
    )
    payer_label = models.CharField(_("payment source"), max_length=64, blank=True, default="")
    inmate = models.ForeignKey(
        "facilities.Inmate", on_delete=models.PROTECT, related_name="+", verbose_name=_("inmate")
    )
    reason = models.CharField(_("reason"), max_length=200)
    # Kinds, not rules: a pair keeps skipping what it names when a rule of that kind is
    # changed (a new version) or another is added, and the kinds are the same at every
    # facility. A list in a JSON field (the project runs on SQLite too, so no ArrayField); an
    # empty list skips every rule, as every pair did before kinds could be named.
    skipped_kinds = models.JSONField(
        _("rules skipped"),
        default=list,
        blank=True,
        help_text=_("The kinds of rule this pair skips. None ticked: it skips every rule."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("auto-accepted pair")
        verbose_name_plural = _("auto-accepted pairs")
        constraints = [
            models.UniqueConstraint(
                fields=["depositor", "inmate"], name="auto_accept_once_per_pair"
            ),
            models.UniqueConstraint(
                fields=["payer_fingerprint", "inmate"],
                condition=~Q(payer_fingerprint=""),
                name="auto_accept_once_per_source_pair",
            ),
            # A pair names a depositor or a payment source, one of the two.
            models.CheckConstraint(
                condition=(Q(depositor__isnull=False) & Q(payer_fingerprint=""))
                | (Q(depositor__isnull=True) & ~Q(payer_fingerprint="")),
                name="auto_accept_depositor_or_source",
            ),
        ]

    def __str__(self):
        party = self.depositor.email if self.depositor_id else self.payer_label
        return f"{party} ↔ {self.inmate}"

    def skips(self, kind: str) -> bool:
        """Whether a deposit of this pair skips a rule of ``kind``."""
        return not self.skipped_kinds or kind in self.skipped_kinds


class FacilityMonitoring(models.Model):
    """A facility's review deadlines: a hold shows as needing attention after
    ``attention_days`` and is refunded automatically after ``refund_days``."""

    facility = models.OneToOneField(
        "facilities.Facility", on_delete=models.CASCADE, related_name="monitoring"
    )
    attention_days = models.PositiveSmallIntegerField(_("needs attention after (days)"), default=3)
    refund_days = models.PositiveSmallIntegerField(
        _("refunded if undecided after (days)"), default=14
    )

    class Meta:
        verbose_name = _("review deadlines")
        verbose_name_plural = _("review deadlines")
        constraints = [
            models.CheckConstraint(
                condition=Q(refund_days__gt=models.F("attention_days")),
                name="monitoring_refund_after_attention",
            )
        ]

    def __str__(self):
        return str(self.facility)
