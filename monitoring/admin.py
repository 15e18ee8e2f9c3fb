"""The security officers' screens, scoped to their facilities like every admin screen: the
rules (each save a new version), the deposits to review (oldest first, with the rules that
fired and the parties' history), auto-accepted pairs and each facility's review deadlines.

Accept and reject are actions with a confirmation page; each calls one service per hold, which
moves the money exactly once (``monitoring.services``).

About 580 lines: the review queue's actions, their confirmation pages and the rule form's
versioning read together; each screen's class is short.
"""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Max, Sum
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin, user_facility_ids
from commissary import errors
from commissary.money import format_fen
from ledger.forms import YuanField
from ledger.models import Deposit
from payments import payers
from payments.models import Payment

from . import services
from .models import AutoAccept, FacilityMonitoring, Hold, Rule, RuleVersion
from .screening import PAID, depositor_history

PAYER_PROVIDERS = (
    ("alipay", _("Alipay")),
    ("wechat", _("WeChat Pay")),
    ("sandbox", _("Sandbox")),
)


class PayerFieldsForm(forms.ModelForm):
    """A payment source typed in as the provider's payer id and kept only as its keyed hash and
    a masked label (``payments.payers``) on the instance's ``payer_fingerprint`` and
    ``payer_label``, so the rule or the pair matches without storing the id."""

    payer_provider = forms.ChoiceField(
        label=_("Payment provider"), choices=PAYER_PROVIDERS, required=False
    )
    payer_id = forms.CharField(
        label=_("Payer id at the provider"),
        help_text=_(
            "Alipay's buyer id (2088…) or open id, or the WeChat Pay openid. Only a keyed hash "
            "and a masked label are kept."
        ),
        max_length=128,
        required=False,
    )

    def clean(self):
        cleaned = super().clean()
        payer_id = (cleaned.get("payer_id") or "").strip()
        if payer_id:
            if not cleaned.get("payer_provider"):
                self.add_error("payer_provider", _("Say which provider this payer id is from."))
            else:
                self.instance.payer_fingerprint = payers.fingerprint(
                    cleaned["payer_provider"], payer_id
                )
                self.instance.payer_label = payers.masked(payer_id)
        return cleaned


class RuleForm(PayerFieldsForm):
    amount_fen = YuanField(label=_("Amount (yuan)"), required=False)

    class Meta:
        model = Rule
        fields = (
            "facility",
            "kind",
            "depositor",
            "inmate",
            "amount_fen",
            "count",
            "days",
            "percent",
            "note",
            "is_active",
            "payer_provider",
            "payer_id",
        )

    NEEDS = {
        Rule.Kind.MONITORED_DEPOSITOR: ("depositor",),
        Rule.Kind.MONITORED_INMATE: ("inmate",),
        Rule.Kind.AMOUNT_AT_LEAST: ("amount_fen",),
        Rule.Kind.DEPOSITS_FROM_DEPOSITOR: ("count", "days"),
        Rule.Kind.DEPOSITORS_TO_INMATE: ("count", "days"),
        Rule.Kind.INMATES_FROM_DEPOSITOR: ("count", "days"),
        Rule.Kind.NEAR_MONTHLY_CAP: ("percent",),
        Rule.Kind.NEW_DEPOSITOR: ("days",),
        Rule.Kind.DEPOSITS_FROM_SOURCE: ("count", "days"),
        Rule.Kind.SOURCES_TO_INMATE: ("count", "days"),
        Rule.Kind.INMATES_FROM_SOURCE: ("count", "days"),
        Rule.Kind.DEPOSITORS_FROM_SOURCE: ("count", "days"),
    }

    def clean(self):
        cleaned = super().clean()
        for field in self.NEEDS.get(cleaned.get("kind"), ()):
            if cleaned.get(field) in (None, ""):
                self.add_error(field, _("This kind of rule needs this value."))
        if (
            cleaned.get("kind") == Rule.Kind.MONITORED_SOURCE
            and not self.instance.payer_fingerprint
        ):
            self.add_error("payer_id", _("This kind of rule needs this value."))
        return cleaned


class RuleVersionInline(FacilityScopedAdmin, admin.TabularInline):
    model = RuleVersion
    facility_field = "rule__facility"
    fields = ("version", "kind", "parameters", "is_active", "changed_by", "changed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Rule)
class RuleAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = RuleForm
    list_display = ("kind", "facility", "summary", "is_active", "version", "updated_at")
    list_filter = ("facility", "kind", "is_active")
    readonly_fields = ("payer_label",)
    raw_id_fields = ("depositor",)
    autocomplete_fields = ("inmate",)
    inlines = (RuleVersionInline,)

    @admin.display(description=_("Thresholds"))
    def summary(self, rule):
        parts = []
        if rule.amount_fen:
            parts.append(format_fen(rule.amount_fen))
        if rule.count is not None:
            parts.append(gettext("N = %(n)s") % {"n": rule.count})
        if rule.days is not None:
            parts.append(gettext("D = %(d)s days") % {"d": rule.days})
        if rule.percent is not None:
            parts.append(f"X = {rule.percent}%")
        if rule.depositor_id:
            parts.append(rule.depositor.email)
        if rule.inmate_id:
            parts.append(str(rule.inmate))
        if rule.payer_label:
            parts.append(rule.payer_label)
        return " · ".join(parts)

    def has_delete_permission(self, request, obj=None):
        return False  # a rule is switched off, never deleted: holds point at its versions

    def save_model(self, request, obj, form, change):
        services.save_rule(rule=obj, staff=request.user)


class MineFilter(admin.SimpleListFilter):
    title = _("list")
    parameter_name = "mine"

    def lookups(self, request, model_admin):
        return (("1", _("My list")),)

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.filter(assigned_to=request.user)
        return queryset


class RejectForm(forms.Form):
    reasons = forms.MultipleChoiceField(
        label=_("Reasons"), choices=Hold.Reason.choices, widget=forms.CheckboxSelectMultiple
    )
    text = forms.CharField(
        label=_("More (required for 'other' or a report number)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@admin.register(Hold)
class HoldAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    # What decides the review first: on a phone the columns past the screen's edge scroll.
    list_display = (
        "deposit_reference",
        "amount",
        "rules_fired",
        "needs_attention",
        "inmate",
        "depositor_email",
        "created_at",
        "assigned_to",
        "state",
    )
    list_filter = ("state", MineFilter, "facility")
    ordering = ("created_at",)
    list_select_related = (
        "deposit",
        "inmate",
        "depositor",
        "assigned_to",
        "facility__monitoring",
    )
    actions = ("assign_to_me", "accept_selected", "reject_selected")
    readonly_fields = (
        "deposit_reference",
        "facility",
        "inmate",
        "depositor_email",
        "amount",
        "created_at",
        "rules_fired",
        "state",
        "assigned_to",
        "decided_by",
        "decided_at",
        "reasons_display",
        "reason_text",
        "depositor_history",
        "inmate_senders",
        "payment_source",
        "depositor_sources",
        "source_depositors",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("fired__rule")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_decide_permission(self, request):
        return request.user.has_perm("monitoring.decide_hold")

    @admin.display(description=_("Deposit"))
    def deposit_reference(self, hold):
        return str(hold.deposit.reference)[:8]

    @admin.display(description=_("Depositor"))
    def depositor_email(self, hold):
        return hold.depositor.email if hold.depositor_id else "—"

    @admin.display(description=_("Amount"), ordering="amount_fen")
    def amount(self, hold):
        return format_fen(hold.amount_fen)

    @admin.display(description=_("Needs attention"), boolean=True)
    def needs_attention(self, hold):
        if hold.state != Hold.State.PENDING:
            return False
        days = getattr(getattr(hold.facility, "monitoring", None), "attention_days", 3)
        return timezone.now() - hold.created_at >= dt.timedelta(days=days)

    @admin.display(description=_("Rules that fired"))
    def rules_fired(self, hold):
        return "; ".join(f"{v.get_kind_display()} (v{v.version})" for v in hold.fired.all())

    @admin.display(description=_("Reasons"))
    def reasons_display(self, hold):
        labels = dict(Hold.Reason.choices)
        return "; ".join(str(labels.get(reason, reason)) for reason in hold.reasons)

    @admin.display(description=_("Depositor's history"))
    def depositor_history(self, hold):
        if not hold.depositor_id:
            return "—"
        facility_ids = user_facility_ids(self._request) or [hold.facility_id]
        history = depositor_history(
            depositor_id=hold.depositor_id, inmate_id=hold.inmate_id, facility_ids=facility_ids
        )
        states = dict(Hold.State.choices)
        decisions = ", ".join(
            f"{states.get(state, state)}: {n}" for state, n in history["decisions"].items()
        )
        return format_html(
            "{}<br>{}<br>{}",
            gettext("With this inmate: %(n)s deposits, %(total)s")
            % {
                "n": history["with_inmate"]["n"],
                "total": format_fen(history["with_inmate"]["total"] or 0),
            },
            gettext("With %(inmates)s other inmates: %(n)s deposits, %(total)s")
            % {
                "inmates": history["with_others"]["inmates"],
                "n": history["with_others"]["n"],
                "total": format_fen(history["with_others"]["total"] or 0),
            },
            gettext("Earlier decisions: %(decisions)s") % {"decisions": decisions or "—"},
        )

    @admin.display(description=_("The inmate's other senders"))
    def inmate_senders(self, hold):
        facility_ids = user_facility_ids(self._request) or [hold.facility_id]
        senders = (
            Deposit.objects.filter(
                inmate_id=hold.inmate_id, status__in=PAID, facility_id__in=facility_ids
            )
            .exclude(depositor_id=hold.depositor_id)
            .exclude(depositor__isnull=True)
            .values("depositor__email")
            .annotate(n=Count("id"), total=Sum("amount_fen"))
            .order_by("-total")[:20]
        )
        if not senders:
            return "—"
        return format_html_join(
            format_html("<br>"),
            "{} · {} · {}",
            ((row["depositor__email"], row["n"], format_fen(row["total"])) for row in senders),
        )

    def _payer(self, hold) -> tuple[str, str, str]:
        payer = Payment.objects.filter(deposit_id=hold.deposit_id).values_list(
            "payer_fingerprint", "payer_label", "payer_name"
        )
        return payer.first() or ("", "", "")

    @staticmethod
    def _source(label: str, name: str) -> str:
        """A payment source as the provider returned it: its masked account, and the payer's
        name where the provider gave one."""
        return " · ".join(part for part in (label, name) if part) or "—"

    @admin.display(description=_("Payment source"))
    def payment_source(self, hold):
        _fingerprint, label, name = self._payer(hold)
        return self._source(label, name)

    @admin.display(description=_("The depositor's payment sources"))
    def depositor_sources(self, hold):
        """What the providers returned about who paid this depositor's deposits (masked
        account, name), within the officer's facilities."""
        if not hold.depositor_id:
            return "—"
        facility_ids = user_facility_ids(self._request) or [hold.facility_id]
        sources = (
            Payment.objects.filter(
                deposit__depositor_id=hold.depositor_id,
                deposit__status__in=PAID,
                deposit__facility_id__in=facility_ids,
            )
            .exclude(payer_fingerprint="")
            .values("provider", "payer_fingerprint")
            .annotate(n=Count("id"), label=Max("payer_label"), name=Max("payer_name"))
            .order_by("-n")[:20]
        )
        if not sources:
            return "—"
        providers = dict(PAYER_PROVIDERS)
        return format_html_join(
            mark_safe("<br>"),
            "{} · {} · {}",
            (
                (
                    providers.get(row["provider"], row["provider"]),
                    self._source(row["label"], row["name"]),
                    gettext("%(n)s deposits") % {"n": row["n"]},
                )
                for row in sources
            ),
        )

    @admin.display(description=_("The payment source's other depositors"))
    def source_depositors(self, hold):
        fingerprint = self._payer(hold)[0]
        if not fingerprint:
            return "—"
        facility_ids = user_facility_ids(self._request) or [hold.facility_id]
        depositors = (
            Deposit.objects.filter(
                payment__payer_fingerprint=fingerprint,
                status__in=PAID,
                facility_id__in=facility_ids,
            )
            .exclude(depositor_id=hold.depositor_id)
            .exclude(depositor__isnull=True)
            .values("depositor__email")
            .annotate(
                n=Count("id"), inmates=Count("inmate_id", distinct=True), total=Sum("amount_fen")
            )
            .order_by("-total")[:20]
        )
        if not depositors:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            "{} · {} · {}",
            (
                (
                    row["depositor__email"],
                    gettext("%(n)s deposits to %(inmates)s inmates")
                    % {"n": row["n"], "inmates": row["inmates"]},
                    format_fen(row["total"]),
                )
                for row in depositors
            ),
        )

    def get_form(self, request, obj=None, **kwargs):
        self._request = request
        return super().get_form(request, obj, **kwargs)

    @admin.action(description=_("Put on my list"), permissions=["decide"])
    def assign_to_me(self, request, queryset):
        count = sum(services.assign_hold(hold_id=h.pk, staff=request.user) for h in queryset)
        self.message_user(request, gettext("%(n)s put on your list.") % {"n": count})

    def _confirm(self, request, queryset, *, action, title, form=None):
        return TemplateResponse(
            request,
            "admin/monitoring/hold/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "holds": [
                    (
                        hold.pk,
                        str(hold.deposit.reference)[:8],
                        hold.inmate,
                        format_fen(hold.amount_fen),
                        self.rules_fired(hold),
                    )
                    for hold in queryset.select_related("deposit", "inmate").prefetch_related(
                        "fired"
                    )
                ],
                "action": action,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description=_("Accept: credit the selected deposits"), permissions=["decide"])
    def accept_selected(self, request, queryset):
        pending = queryset.filter(state=Hold.State.PENDING)
        if not pending.exists():
            self.message_user(
                request, gettext("None of these is waiting for a decision."), messages.WARNING
            )
            return None
        if request.POST.get("confirmed") != "yes":
            return self._confirm(
                request,
                pending,
                action="accept_selected",
                title=gettext("Accept and credit these deposits?"),
            )
        done = 0
        for hold in pending:
            try:
                services.accept_hold(hold_id=hold.pk, staff=request.user)
                done += 1
            except errors.DomainError as refusal:
                self.message_user(request, str(refusal.message), messages.ERROR)
        self.message_user(request, gettext("%(n)s deposits accepted and credited.") % {"n": done})
        return None

    @admin.action(description=_("Reject: refund the selected deposits"), permissions=["decide"])
    def reject_selected(self, request, queryset):
        pending = queryset.filter(state=Hold.State.PENDING)
        if not pending.exists():
            self.message_user(
                request, gettext("None of these is waiting for a decision."), messages.WARNING
            )
            return None
        form = RejectForm(request.POST if request.POST.get("confirmed") == "yes" else None)
        if not form.is_valid():
            return self._confirm(
                request,
                pending,
                action="reject_selected",
                title=gettext("Reject and refund these deposits?"),
                form=form,
            )
        done = 0
        for hold in pending:
            try:
                services.reject_hold(
                    hold_id=hold.pk,
                    staff=request.user,
                    reasons=form.cleaned_data["reasons"],
                    text=form.cleaned_data["text"],
                )
                done += 1
            except errors.DomainError as refusal:
                self.message_user(request, str(refusal.message), messages.ERROR)
                if isinstance(refusal, services.RejectionNeedsReason):
                    return self._confirm(
                        request,
                        pending,
                        action="reject_selected",
                        title=gettext("Reject and refund these deposits?"),
                        form=form,
                    )
        self.message_user(request, gettext("%(n)s deposits rejected and refunded.") % {"n": done})
        return None


class AutoAcceptForm(PayerFieldsForm):
    skipped_kinds = forms.MultipleChoiceField(
        label=_("Rules skipped"),
        choices=Rule.Kind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The kinds of rule this pair skips. None ticked: it skips every rule."),
    )

    class Meta:
        model = AutoAccept
        fields = (
            "facility",
            "depositor",
            "payer_provider",
            "payer_id",
            "inmate",
            "reason",
            "skipped_kinds",
            "is_active",
        )

    def clean_skipped_kinds(self):
        # In the order of the kinds, so an unchanged choice is never recorded as a change.
        chosen = set(self.cleaned_data["skipped_kinds"])
        return [kind for kind in Rule.Kind.values if kind in chosen]

    def clean(self):
        cleaned = super().clean()
        has_depositor = cleaned.get("depositor") is not None
        if has_depositor == bool(self.instance.payer_fingerprint):
            self.add_error(None, _("Name a depositor or a payment source, one of the two."))
        return cleaned


@admin.register(AutoAccept)
class AutoAcceptAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = AutoAcceptForm
    list_display = (
        "depositor",
        "payer_label",
        "inmate",
        "facility",
        "reason",
        "skipped",
        "is_active",
        "created_at",
    )
    list_filter = ("is_active", "facility")
    readonly_fields = ("payer_label",)
    raw_id_fields = ("depositor",)
    autocomplete_fields = ("inmate",)

    @admin.display(description=_("Rules skipped"))
    def skipped(self, pair):
        if not pair.skipped_kinds:
            return gettext("Every rule")
        labels = dict(Rule.Kind.choices)
        return "; ".join(str(labels.get(kind, kind)) for kind in pair.skipped_kinds)

    def has_delete_permission(self, request, obj=None):
        return False  # switched off instead, so its history stays

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(FacilityMonitoring)
class FacilityMonitoringAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("facility", "attention_days", "refund_days")
