"""Facilities with their policy (caps, fees, thresholds, limits) and housing units."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import selectors as people
from accounts.admin_scope import FacilityScopedAdmin
from commissary.money import format_fen
from ledger import services as ledger_services
from ledger.forms import YuanField

from .. import services
from ..models import POLICY_CHANGE_FIELDS, Facility, HousingUnit

POLICY_AMOUNTS = {
    # yuan form field -> fen model field
    "monthly_cap": "monthly_cap_fen",
    "balance_cap": "balance_cap_fen",
    "deposit_fee_fixed": "deposit_fee_fixed_fen",
    "adjustment_approval_threshold": "adjustment_approval_threshold_fen",
    "max_deposit": "max_deposit_fen",
}


# The fair commissary's day counts (notice of a price rise, time to dispute and to answer).
COMMISSARY_DAYS = ("price_rise_notice_days", "dispute_window_days", "dispute_answer_days")


class FacilityForm(forms.ModelForm):
    """A facility's policy with its amounts typed in yuan. Caps change only when the facility
    is created here; afterwards through ``update_facility_caps``, which keeps the ledger in
    step. Changes to the money policy (threshold and window, fee rule, deposit limits) of an
    existing facility are not saved here: they file a policy change request, with the reason
    typed below, which another facility administrator approves."""

    monthly_cap = YuanField(label=_("Monthly deposit cap"))
    balance_cap = YuanField(label=_("Balance cap"))
    deposit_fee_fixed = YuanField(label=_("Fixed deposit fee"), allow_zero=True)
    adjustment_approval_threshold = YuanField(
        label=_("Debits above this need a second trust officer"), allow_zero=True
    )
    max_deposit = YuanField(
        label=_("Largest single deposit"),
        required=False,
        help_text=_("In yuan, for example 1,234.50. Empty: no limit of its own."),
    )
    policy_change_reason = forms.CharField(
        label=_("Why the money policy changes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Needed when the threshold, its window, the fee or the deposit limits change: the "
            "change waits for another facility administrator to approve it."
        ),
    )

    class Meta:
        model = Facility
        fields = (
            "code",
            "name",
            "timezone",
            "currency",
            "deposit_fee_rate_bp",
            "max_deposits_per_month",
            "approval_window_hours",
            "links_need_approval",
            "trust_alert_emails",
            # the fair commissary: prices and disputes
            "markup_cap_bp",
            "price_rise_notice_days",
            "publishes_prices",
            "dispute_window_days",
            "dispute_answer_days",
        )
        labels = {
            "deposit_fee_rate_bp": _("Deposit fee rate (basis points)"),
            "max_deposits_per_month": _("Most deposits an inmate may receive a month"),
            "approval_window_hours": _("Hours over which one person's debits are summed"),
        }
        help_texts = {"max_deposits_per_month": _("Empty: no limit.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for yuan_field, fen_field in POLICY_AMOUNTS.items():
            if yuan_field in self.fields:
                self.fields[yuan_field].initial = getattr(self.instance, fen_field)
        if self.instance.pk:
            for cap in ("monthly_cap", "balance_cap"):
                self.fields[cap].disabled = True
        for days in COMMISSARY_DAYS:
            if days in self.fields:  # left empty: kept as they are (the defaults when new)
                self.fields[days].required = False
        if "approval_window_hours" in self.fields:
            self.fields["approval_window_hours"].required = False  # empty: as it is

    def clean_approval_window_hours(self):
        hours = self.cleaned_data.get("approval_window_hours")
        return self.instance.approval_window_hours if hours is None else hours

    def _update_errors(self, errors):
        # The model's bounds (``Facility.clean``) name its fen fields, which are not on the
        # form: show them at the yuan field the amount was typed in.
        if hasattr(errors, "error_dict"):
            yuan_field_of = {fen: yuan for yuan, fen in POLICY_AMOUNTS.items()}
            errors = ValidationError(
                {
                    yuan_field_of.get(field, field): messages
                    for field, messages in errors.error_dict.items()
                }
            )
        super()._update_errors(errors)

    def clean(self):
        cleaned_data = super().clean()
        for days in COMMISSARY_DAYS:
            if days in cleaned_data and cleaned_data[days] is None:
                cleaned_data[days] = getattr(self.instance, days)
        for yuan_field, fen_field in POLICY_AMOUNTS.items():
            # A valid amount is in cleaned_data; an optional one left empty (None) clears it.
            if yuan_field in cleaned_data:
                setattr(self.instance, fen_field, cleaned_data[yuan_field])
        return cleaned_data

    def policy_changes(self) -> dict:
        """The money policy values that differ from the saved facility's: {field: new}."""
        if not self.instance.pk:
            return {}
        saved = Facility.objects.get(pk=self.instance.pk)
        values = {field: self.cleaned_data.get(field) for field in self.Meta.fields}
        values.update({fen: self.cleaned_data.get(yuan) for yuan, fen in POLICY_AMOUNTS.items()})
        return {
            field: values[field]
            for field in POLICY_CHANGE_FIELDS
            if field in values and values[field] != getattr(saved, field)
        }

    def _post_clean(self):
        super()._post_clean()
        if self.errors or not self.instance.pk:
            return
        if self.policy_changes() and not self.cleaned_data.get("policy_change_reason", "").strip():
            self.add_error(
                "policy_change_reason",
                gettext("Say why the money policy should change: another administrator reads it."),
            )


@admin.register(Facility)
class FacilityAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = FacilityForm
    list_display = ("code", "name", "timezone", "currency", "monthly_cap", "balance_cap")
    search_fields = ("code", "name")
    actions = None

    def has_add_permission(self, request):
        return request.user.is_superuser  # a new facility is not any one facility's business

    def has_delete_permission(self, request, obj=None):
        return False  # the journal refers to facilities forever

    def get_readonly_fields(self, request, obj=None):
        return ("code", "currency") if obj else ()

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None or not self.has_change_permission(request, obj):
            return [field for field in fields if field != "policy_change_reason"]
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None:
            form.base_fields = {
                name: field
                for name, field in form.base_fields.items()
                if name != "policy_change_reason"
            }
        return form

    def save_model(self, request, obj, form, change):
        if change:
            changes = form.policy_changes()
            with transaction.atomic():
                services.save_facility_policy(facility=obj)
                if changes and people.may_change_policy(
                    staff_id=request.user.pk, facility_id=obj.pk
                ):
                    request.filed_policy_request = ledger_services.request_policy_change(
                        facility_id=obj.pk,
                        staff_id=request.user.pk,
                        reason=form.cleaned_data["policy_change_reason"],
                        values=changes,
                    )
            return
        policy = {
            field: getattr(obj, field)
            for field in (*FacilityForm.Meta.fields, *POLICY_AMOUNTS.values())
            if field not in ("code", "name")
        }
        created = services.create_facility(code=obj.code, name=obj.name, **policy)
        obj.pk = created.pk

    def response_change(self, request, obj):
        filed = getattr(request, "filed_policy_request", None)
        if filed is None:
            return super().response_change(request, obj)
        self.message_user(
            request,
            gettext(
                "The other settings are saved. The money policy change is request #%(id)d: it "
                "takes effect once another facility administrator approves it."
            )
            % {"id": filed.pk},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:ledger_staffrequest_change", args=[filed.pk]))

    @admin.display(description=_("monthly cap"))
    def monthly_cap(self, facility):
        return format_fen(facility.monthly_cap_fen, facility.currency)

    @admin.display(description=_("balance cap"))
    def balance_cap(self, facility):
        return format_fen(facility.balance_cap_fen, facility.currency)

    # What staff who may only view a facility see for the amounts the form types in yuan.
    @admin.display(description=_("Fixed deposit fee"))
    def deposit_fee_fixed(self, facility):
        return format_fen(facility.deposit_fee_fixed_fen, facility.currency)

    @admin.display(description=_("Debits above this need a second trust officer"))
    def adjustment_approval_threshold(self, facility):
        return format_fen(facility.adjustment_approval_threshold_fen, facility.currency)

    @admin.display(description=_("Largest single deposit"))
    def max_deposit(self, facility):
        if facility.max_deposit_fen is None:
            return gettext("No limit")
        return format_fen(facility.max_deposit_fen, facility.currency)


# --- housing units ------------------------------------------------------------------------


class HousingUnitForm(forms.ModelForm):
    class Meta:
        model = HousingUnit
        fields = ("facility", "name")

    def clean(self):
        cleaned_data = super().clean()
        unit = self.instance
        moved_to = cleaned_data.get("facility")
        if (
            unit.pk
            and moved_to is not None
            and moved_to.pk != unit.facility_id
            and unit.inmates.exists()
        ):
            self.add_error(
                "facility",
                gettext(
                    "This housing unit still has inmates; transfer them out before moving it "
                    "to another facility."
                ),
            )
        return cleaned_data


@admin.register(HousingUnit)
class HousingUnitAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    form = HousingUnitForm
    list_display = ("name", "facility")
    list_filter = ("facility",)
    search_fields = ("name",)
    list_select_related = ("facility",)
