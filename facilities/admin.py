"""Staff screens for facilities, inmates and kiosks. Intake is the inmate add form; transfer
and release are actions. Each calls one service; no screen writes money itself."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.validators import RegexValidator
from django.template.response import TemplateResponse

from commissary.errors import DomainError
from ledger.money import format_fen
from ledger.selectors import inmate_balance

from . import services
from .models import Facility, HousingUnit, Inmate, KioskDevice


@admin.register(Facility)
class FacilityAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "timezone", "currency", "monthly_cap", "balance_cap")
    search_fields = ("code", "name")

    def get_readonly_fields(self, request, obj=None):
        # Caps change through update_facility_caps (it keeps the ledger rows in step).
        return ("monthly_cap_fen", "balance_cap_fen", "currency") if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            services.save_facility_policy(facility=obj)
            return
        policy = {f: form.cleaned_data[f] for f in form.cleaned_data if f not in ("code", "name")}
        created = services.create_facility(
            code=form.cleaned_data["code"], name=form.cleaned_data["name"], **policy
        )
        obj.pk = created.pk

    @admin.display(description="monthly cap")
    def monthly_cap(self, facility):
        return format_fen(facility.monthly_cap_fen, facility.currency)

    @admin.display(description="balance cap")
    def balance_cap(self, facility):
        return format_fen(facility.balance_cap_fen, facility.currency)


@admin.register(HousingUnit)
class HousingUnitAdmin(admin.ModelAdmin):
    list_display = ("name", "facility")
    list_filter = ("facility",)


def check_housing_unit(form, facility):
    # intake_inmate refuses a unit of another facility too; here it becomes a form error
    # rather than a refusal after the form was accepted.
    unit = form.cleaned_data.get("housing_unit")
    if unit is not None and facility is not None and unit.facility_id != facility.pk:
        form.add_error("housing_unit", "This housing unit belongs to another facility.")


class IntakeForm(forms.ModelForm):
    pin = forms.CharField(
        min_length=4,
        max_length=8,
        validators=[RegexValidator(r"^[0-9]+$", "A PIN is digits only.")],
        widget=forms.PasswordInput,
        help_text="4 to 8 digits; the inmate signs in at the kiosk with it.",
    )

    class Meta:
        model = Inmate
        fields = ("facility", "housing_unit", "inmate_number", "surname", "given_name")

    def clean(self):
        cleaned_data = super().clean()
        check_housing_unit(self, cleaned_data.get("facility"))
        return cleaned_data


class InmateChangeForm(forms.ModelForm):
    """Editing an admitted inmate: the facility changes only through the transfer action."""

    class Meta:
        model = Inmate
        fields = ("surname", "given_name", "housing_unit")

    def clean(self):
        cleaned_data = super().clean()
        check_housing_unit(self, self.instance.facility)
        return cleaned_data


class TransferForm(forms.Form):
    to_facility = forms.ModelChoiceField(queryset=Facility.objects.all(), label="To facility")
    # Made once when the form is shown and posted back with it, so submitting the same form
    # twice (a double click, a resent POST) transfers once.
    request_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)


@admin.register(Inmate)
class InmateAdmin(admin.ModelAdmin):
    list_display = (
        "inmate_number",
        "surname",
        "given_name",
        "facility",
        "housing_unit",
        "status",
        "spendable",
        "held",
    )
    list_filter = ("status", "facility")
    search_fields = ("inmate_number", "surname", "given_name")
    list_select_related = ("facility", "housing_unit")
    actions = ("transfer_inmates", "release_inmates")

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = IntakeForm if obj is None else InmateChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("facility", "inmate_number", "status", "admitted_at", "released_at", "balance")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("facility", "housing_unit", "inmate_number", "surname", "given_name", "pin")
        return (
            "facility",
            "inmate_number",
            "surname",
            "given_name",
            "housing_unit",
            "status",
            "admitted_at",
            "released_at",
            "balance",
        )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        try:
            inmate = services.intake_inmate(
                facility=data["facility"],
                housing_unit=data["housing_unit"],
                inmate_number=data["inmate_number"],
                surname=data["surname"],
                given_name=data["given_name"],
                pin=data["pin"],
            )
        except DomainError as refused:
            form.add_error(None, refused.message)
            raise
        obj.pk = inmate.pk

    def has_delete_permission(self, request, obj=None):
        return False  # the journal refers to inmates forever; release them instead

    @admin.display(description="money")
    def balance(self, inmate):
        summary = inmate_balance(inmate=inmate)
        return (
            f"spendable {format_fen(summary.spendable_fen, summary.currency)}, "
            f"held {format_fen(summary.held_fen, summary.currency)}, "
            f"pending {format_fen(summary.pending_fen, summary.currency)}; "
            f"this month received {format_fen(summary.month_received_fen, summary.currency)} "
            f"of {format_fen(summary.monthly_cap_fen, summary.currency)}"
        )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("ledger_accounts")

    @admin.display(description="spendable")
    def spendable(self, inmate):
        return format_fen(self._balances(inmate)[0], inmate.facility.currency)

    @admin.display(description="held")
    def held(self, inmate):
        return format_fen(self._balances(inmate)[1], inmate.facility.currency)

    def _balances(self, inmate):
        accounts = {a.kind: a.balance_fen for a in inmate.ledger_accounts.all()}
        return accounts.get("spendable"), accounts.get("held")

    @admin.action(description="Transfer selected inmates to another facility")
    def transfer_inmates(self, request, queryset):
        if "apply" in request.POST:
            form = TransferForm(request.POST)
            if form.is_valid():
                for inmate in queryset:
                    try:
                        services.transfer_inmate(
                            inmate_id=inmate.pk,
                            to_facility=form.cleaned_data["to_facility"],
                            staff_id=request.user.pk,
                            idempotency_key=(
                                f"transfer:{form.cleaned_data['request_key']}:{inmate.pk}"
                            ),
                        )
                        self.message_user(request, f"{inmate} transferred.")
                    except DomainError as refused:
                        self.message_user(request, f"{inmate}: {refused.message}", messages.ERROR)
                return None
        else:
            form = TransferForm()
        return TemplateResponse(
            request,
            "admin/facilities/transfer.html",
            {
                **self.admin_site.each_context(request),
                "title": "Transfer inmates",
                "inmates": queryset,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Release selected inmates (pay out and close their accounts)")
    def release_inmates(self, request, queryset):
        for inmate in queryset:
            try:
                services.release_inmate(
                    inmate_id=inmate.pk,
                    staff_id=request.user.pk,
                    idempotency_key=f"release:{inmate.pk}",
                )
                self.message_user(request, f"{inmate} released; money paid out.")
            except DomainError as refused:
                self.message_user(request, f"{inmate}: {refused.message}", messages.ERROR)


@admin.register(KioskDevice)
class KioskDeviceAdmin(admin.ModelAdmin):
    list_display = ("name", "facility", "key_prefix", "is_active", "created_at", "revoked_at")
    list_filter = ("facility", "is_active")
    fields = ("facility", "name", "key_prefix", "is_active", "revoked_at")
    readonly_fields = ("key_prefix", "is_active", "revoked_at")
    actions = ("revoke",)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        device, raw_key = services.register_kiosk_device(
            facility=form.cleaned_data["facility"], name=form.cleaned_data["name"]
        )
        obj.pk = device.pk
        self.message_user(
            request,
            f"Kiosk key for {device.name} (shown once, store it on the device now): {raw_key}",
            messages.WARNING,
        )

    @admin.action(description="Revoke the keys of selected kiosks")
    def revoke(self, request, queryset):
        for device in queryset:
            services.revoke_kiosk_device(device_id=device.pk)
        self.message_user(request, f"{queryset.count()} kiosk key(s) revoked.")
