"""Facilities with their policy (caps, fees, thresholds, limits) and housing units."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from commissary.money import format_fen
from ledger.forms import YuanField

from .. import services
from ..models import Facility, HousingUnit

POLICY_AMOUNTS = {
    # yuan form field -> fen model field
    "monthly_cap": "monthly_cap_fen",
    "balance_cap": "balance_cap_fen",
    "deposit_fee_fixed": "deposit_fee_fixed_fen",
    "adjustment_approval_threshold": "adjustment_approval_threshold_fen",
    "max_deposit": "max_deposit_fen",
}


class FacilityForm(forms.ModelForm):
    """A facility's policy with its amounts typed in yuan. Caps change only when the facility
    is created here; afterwards through ``update_facility_caps``, which keeps the ledger in
    step."""

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

    class Meta:
        model = Facility
        fields = (
            "code",
            "name",
            "timezone",
            "currency",
            "deposit_fee_rate_bp",
            "max_deposits_per_month",
            "links_need_approval",
            "trust_alert_emails",
        )
        labels = {
            "deposit_fee_rate_bp": _("Deposit fee rate (basis points)"),
            "max_deposits_per_month": _("Most deposits an inmate may receive a month"),
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

    def clean(self):
        cleaned_data = super().clean()
        for yuan_field, fen_field in POLICY_AMOUNTS.items():
            # A valid amount is in cleaned_data; an optional one left empty (None) clears it.
            if yuan_field in cleaned_data:
                setattr(self.instance, fen_field, cleaned_data[yuan_field])
        return cleaned_data


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

    def save_model(self, request, obj, form, change):
        if change:
            services.save_facility_policy(facility=obj)
            return
        policy = {
            field: getattr(obj, field)
            for field in (*FacilityForm.Meta.fields, *POLICY_AMOUNTS.values())
            if field not in ("code", "name")
        }
        created = services.create_facility(code=obj.code, name=obj.name, **policy)
        obj.pk = created.pk

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
