"""Staff screens for facilities, housing units, inmates and kiosks. Intake is the inmate add
form; transfer and release are actions with a confirmation page that shows each inmate's money
and what will happen to it (a release paying out more than the facility's threshold waits for a
second trust officer as a money request). Each screen calls one service; none writes money
itself. Every screen is scoped to the staff member's facilities (``accounts.admin_scope``)."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.validators import RegexValidator
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportMixin

from accounts.admin_scope import FacilityScopedAdmin, scope_queryset
from commissary.errors import DomainError
from ledger.forms import YuanField
from ledger.models import Transaction
from ledger.money import format_fen
from ledger.selectors import (
    inmate_balance,
    release_needs_approval,
    release_payout_fen,
    transfer_excess_fen,
)
from ledger.services import kiosk_scope

from . import services
from .models import Facility, HousingUnit, Inmate, KioskDevice
from .roster import InmateRosterResource
from .selectors import grade_names_at

# --- facilities ---------------------------------------------------------------------------

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


# --- inmates ------------------------------------------------------------------------------


def check_housing_unit(form, facility):
    # intake_inmate refuses a unit of another facility too; here it becomes a form error
    # rather than a refusal after the form was accepted.
    unit = form.cleaned_data.get("housing_unit")
    if unit is not None and facility is not None and unit.facility_id != facility.pk:
        form.add_error("housing_unit", gettext("This housing unit belongs to another facility."))


class IntakeForm(forms.ModelForm):
    pin = forms.CharField(
        label=_("PIN"),
        min_length=4,
        max_length=8,
        validators=[RegexValidator(r"^[0-9]+$", _("A PIN is digits only."))],
        widget=forms.PasswordInput,
        help_text=_("4 to 8 digits; the inmate signs in at the kiosk with it."),
    )

    class Meta:
        model = Inmate
        fields = ("facility", "housing_unit", "inmate_number", "surname", "given_name")

    def clean(self):
        cleaned_data = super().clean()
        check_housing_unit(self, cleaned_data.get("facility"))
        return cleaned_data


class InmateChangeForm(forms.ModelForm):
    """Editing an admitted inmate: the facility changes only through the transfer action, and
    the housing units offered are the inmate's facility's. A new PIN may be set (inmates
    admitted from a roster have none until then)."""

    new_pin = forms.CharField(
        label=_("New PIN"),
        required=False,
        min_length=4,
        max_length=8,
        validators=[RegexValidator(r"^[0-9]+$", _("A PIN is digits only."))],
        widget=forms.PasswordInput,
        help_text=_("Leave empty to keep the PIN. 4 to 8 digits."),
    )

    class Meta:
        model = Inmate
        fields = ("surname", "given_name", "housing_unit")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "housing_unit" in self.fields:
            self.fields["housing_unit"].queryset = HousingUnit.objects.filter(
                facility_id=self.instance.facility_id
            )

    def clean(self):
        cleaned_data = super().clean()
        check_housing_unit(self, self.instance.facility)
        return cleaned_data


class TransferForm(forms.Form):
    to_facility = forms.ModelChoiceField(queryset=Facility.objects.none(), label=_("To facility"))
    # Made once when the form is shown and posted back with it, so submitting the same form
    # twice (a double click, a resent POST) transfers once.
    request_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)


class ReleaseForm(forms.Form):
    """Releasing pays money out: the staff member types back how many inmates they release.
    When some payout is above the facility's threshold, its release is filed as a money
    request for a second trust officer, with the reason typed here."""

    confirm_count = forms.IntegerField(label=_("Type the number of inmates to release"))
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Needed when a payout waits for a second trust officer: it goes on the money request."
        ),
    )
    request_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args, count: int, waiting: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.count = count
        self.waiting = waiting
        if not waiting:
            del self.fields["reason"]

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if self.waiting and not reason:
            raise forms.ValidationError(
                gettext(
                    "Give a reason: the releases that wait for a second trust officer are "
                    "filed with it."
                )
            )
        return reason

    def clean_confirm_count(self):
        typed = self.cleaned_data["confirm_count"]
        if typed != self.count:
            raise forms.ValidationError(
                gettext("You selected %(count)d inmates; type %(count)d to release them.")
                % {"count": self.count}
            )
        return typed


def admin_link(url_name: str, text, **query) -> str:
    """A link to an admin list filtered by ``query``, or "" when that admin is not installed."""
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return ""
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return format_html('<a href="{}">{}</a>', url, text)


@admin.register(Inmate)
class InmateAdmin(ImportMixin, FacilityScopedAdmin, admin.ModelAdmin):
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
    ordering = ("facility__name", "inmate_number")
    list_select_related = ("facility", "housing_unit")
    actions = ("transfer_inmates", "release_inmates")
    resource_classes = [InmateRosterResource]

    def has_import_permission(self, request):
        return self.has_add_permission(request)  # a roster import is intake, in bulk

    def get_import_resource_kwargs(self, request, **kwargs):
        return {**super().get_import_resource_kwargs(request, **kwargs), "user": request.user}

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = IntakeForm if obj is None else InmateChangeForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "facility",
            "inmate_number",
            "status",
            "admitted_at",
            "released_at",
            "balance",
            "records",
        )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("facility", "housing_unit", "inmate_number", "surname", "given_name", "pin")
        # A PIN is set, never shown: staff who may only view the inmate get no PIN row.
        may_set_pin = self.has_change_permission(request, obj)
        return (
            "facility",
            "inmate_number",
            "surname",
            "given_name",
            "housing_unit",
            "status",
            "admitted_at",
            "released_at",
            *(("new_pin",) if may_set_pin else ()),
            "balance",
            "records",
        )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            if form.cleaned_data.get("new_pin"):
                services.set_inmate_pin(inmate_id=obj.pk, pin=form.cleaned_data["new_pin"])
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
            form.add_error(None, gettext(refused.message))
            raise
        obj.pk = inmate.pk

    def has_delete_permission(self, request, obj=None):
        return False  # the journal refers to inmates forever; release them instead

    @admin.display(description=_("money"))
    def balance(self, inmate):
        summary = inmate_balance(inmate=inmate)
        currency = summary.currency
        return gettext(
            "spendable %(spendable)s, held %(held)s, deposits awaiting payment %(pending)s; "
            "this month received %(received)s of %(cap)s (%(room)s left); "
            "room under the balance cap %(balance_room)s"
        ) % {
            "spendable": format_fen(summary.spendable_fen, currency),
            "held": format_fen(summary.held_fen, currency),
            "pending": format_fen(summary.pending_fen, currency),
            "received": format_fen(summary.month_received_fen, currency),
            "cap": format_fen(summary.monthly_cap_fen, currency),
            "room": format_fen(summary.month_remaining_fen, currency),
            "balance_room": format_fen(summary.balance_room_fen, currency),
        }

    @admin.display(description=_("records"))
    def records(self, inmate):
        links = [
            admin_link(
                "admin:ledger_account_changelist", gettext("Accounts"), inmate__id__exact=inmate.pk
            ),
            admin_link(
                "admin:ledger_transaction_changelist",
                gettext("Transactions"),
                inmate__id__exact=inmate.pk,
            ),
            admin_link(
                "admin:ledger_deposit_changelist", gettext("Deposits"), inmate__id__exact=inmate.pk
            ),
            admin_link(
                "admin:catalog_order_changelist", gettext("Orders"), inmate__id__exact=inmate.pk
            ),
            admin_link(
                "admin:ledger_staffrequest_changelist",
                gettext("Money requests"),
                inmate__id__exact=inmate.pk,
            ),
            admin_link(
                "admin:ledger_staffrequest_add", gettext("New money request"), inmate=inmate.pk
            ),
        ]
        return format_html_join(" · ", "{}", ((link,) for link in links if link))

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("ledger_accounts")

    @admin.display(description=_("spendable"))
    def spendable(self, inmate):
        return format_fen(self._balances(inmate)[0], inmate.facility.currency)

    @admin.display(description=_("held"))
    def held(self, inmate):
        return format_fen(self._balances(inmate)[1], inmate.facility.currency)

    def _balances(self, inmate):
        accounts = {a.kind: a for a in inmate.ledger_accounts.all()}
        spendable, held = accounts.get("spendable"), accounts.get("held")
        return (
            spendable.balance_fen if spendable else None,
            held.balance_fen if held else None,
            spendable.pending_fen if spendable else 0,
        )

    def _confirmation(self, request, queryset, *, template, title, action, form, rows):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "rows": rows,
                "inmates": queryset,
                "selected_ids": list(queryset.values_list("pk", flat=True)),
                "form": form,
                "action": action,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "media": self.media,
            },
        )

    @admin.action(
        description=_("Transfer selected inmates to another facility"),
        permissions=("change",),
    )
    def transfer_inmates(self, request, queryset):
        queryset = queryset.filter(status=Inmate.Status.ACTIVE).select_related("grade")
        destinations = scope_queryset(Facility.objects.all(), request.user, "pk")
        form = TransferForm(request.POST if "to_facility" in request.POST else None)
        form.fields["to_facility"].queryset = destinations
        rows = []
        if form.is_bound and form.is_valid():
            to_facility = form.cleaned_data["to_facility"]
            if "apply" in request.POST:
                self._transfer(request, queryset, form.cleaned_data)
                return None
            grades_there = grade_names_at(
                facility_id=to_facility.pk,
                names={inmate.grade.name for inmate in queryset if inmate.grade is not None},
            )
            for inmate in queryset:
                spendable, held, pending = self._balances(inmate)
                to_held = transfer_excess_fen(
                    spendable_fen=spendable or 0, to_balance_cap_fen=to_facility.balance_cap_fen
                )
                rows.append(
                    {
                        "inmate": inmate,
                        "spendable": format_fen(spendable),
                        "held": format_fen(held),
                        "pending": format_fen(pending),
                        "outcome": format_fen(to_held),
                        "grade": inmate.grade.name
                        if inmate.grade is not None and inmate.grade.name in grades_there
                        else gettext("None: assign one after the transfer"),
                        "refused": gettext("Deposits are awaiting payment; it will be refused.")
                        if pending
                        else "",
                    }
                )
        return self._confirmation(
            request,
            queryset,
            template="admin/facilities/transfer.html",
            title=gettext("Transfer inmates"),
            action="transfer_inmates",
            form=form,
            rows=rows,
        )

    def _transfer(self, request, queryset, data):
        for inmate in queryset:
            try:
                moved = services.transfer_inmate(
                    inmate_id=inmate.pk,
                    to_facility=data["to_facility"],
                    staff_id=request.user.pk,
                    idempotency_key=f"transfer:{data['request_key']}:{inmate.pk}",
                )
            except DomainError as refused:
                self.message_user(request, f"{inmate}: {gettext(refused.message)}", messages.ERROR)
                continue
            # The inmate took the new facility's grade of the same name, else none.
            if moved.grade is not None:
                self.message_user(
                    request,
                    gettext(
                        "%(inmate)s transferred. Grade %(grade)s kept as the new facility's "
                        "%(grade)s."
                    )
                    % {"inmate": moved, "grade": moved.grade.name},
                )
            else:
                self.message_user(
                    request,
                    gettext("%(inmate)s transferred. No grade at the new facility: assign one.")
                    % {"inmate": moved},
                    messages.WARNING,
                )

    @admin.action(
        description=_("Release selected inmates (pay out and close their accounts)"),
        permissions=("change",),
    )
    def release_inmates(self, request, queryset):
        queryset = queryset.filter(status=Inmate.Status.ACTIVE)
        rows, total_fen = [], 0
        for inmate in queryset:
            spendable, held, pending = self._balances(inmate)
            paid_out = release_payout_fen(spendable_fen=spendable or 0, held_fen=held or 0)
            waits = release_needs_approval(
                payout_fen=paid_out,
                approval_threshold_fen=inmate.facility.adjustment_approval_threshold_fen,
            )
            total_fen += paid_out
            rows.append(
                {
                    "inmate": inmate,
                    "spendable": format_fen(spendable),
                    "held": format_fen(held),
                    "pending": format_fen(pending),
                    "outcome": format_fen(paid_out),
                    "waits": waits,
                    "what_happens": gettext("Waits for a second trust officer")
                    if waits
                    else gettext("Released now"),
                }
            )
        count, waiting = len(rows), sum(row["waits"] for row in rows)
        form = ReleaseForm(
            request.POST if "confirm_count" in request.POST else None, count=count, waiting=waiting
        )
        if form.is_bound and form.is_valid():
            self._release(request, queryset, form.cleaned_data)
            return None
        response = self._confirmation(
            request,
            queryset,
            template="admin/facilities/release.html",
            title=ngettext("Release %(count)d inmate", "Release %(count)d inmates", count)
            % {"count": count},
            action="release_inmates",
            form=form,
            rows=rows,
        )
        response.context_data["total"] = format_fen(total_fen)
        response.context_data["waiting"] = waiting
        return response

    def _release(self, request, queryset, data):
        released = waiting = 0
        for inmate in queryset:
            try:
                outcome = services.release_or_request_approval(
                    inmate_id=inmate.pk,
                    staff_id=request.user.pk,
                    reason=data.get("reason", ""),
                    idempotency_key=f"release:{inmate.pk}",
                )
            except DomainError as refused:
                self.message_user(request, f"{inmate}: {gettext(refused.message)}", messages.ERROR)
                continue
            if outcome.is_waiting:
                waiting += 1
                self.message_user(
                    request,
                    gettext(
                        "%(inmate)s: the payout waits for a second trust officer "
                        "(money request #%(id)d); nothing has been paid out yet."
                    )
                    % {"inmate": inmate, "id": outcome.waiting_request.pk},
                    messages.WARNING,
                )
            else:
                released += 1
                self.message_user(
                    request, gettext("%(inmate)s released; money paid out.") % {"inmate": inmate}
                )
        self.message_user(
            request,
            ngettext("%(count)d inmate released now.", "%(count)d inmates released now.", released)
            % {"count": released}
            + " "
            + ngettext(
                "%(count)d release waits for a second trust officer.",
                "%(count)d releases wait for a second trust officer.",
                waiting,
            )
            % {"count": waiting},
        )


# --- kiosks -------------------------------------------------------------------------------


@admin.register(KioskDevice)
class KioskDeviceAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("name", "facility", "key_prefix", "is_active", "created_at", "revoked_at")
    list_filter = ("facility", "is_active")
    fields = ("facility", "name", "key_prefix", "is_active", "revoked_at")
    readonly_fields = ("key_prefix", "is_active", "revoked_at")
    search_fields = ("name", "key_prefix")
    actions = ("revoke",)

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "facility") if obj else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        # A device that ever moved money stays, so the journal can name it; revoke it instead.
        if obj is not None and self.has_history(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @staticmethod
    def has_history(device) -> bool:
        return Transaction.objects.filter(idempotency_scope=kiosk_scope(device.pk)).exists()

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        device, raw_key = services.register_kiosk_device(
            facility=form.cleaned_data["facility"], name=form.cleaned_data["name"]
        )
        obj.pk = device.pk
        request._issued_kiosk_key = raw_key

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, "_issued_kiosk_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        # The key is shown on this page only: never in a message (kept in a cookie or the
        # session) and never stored unhashed.
        return TemplateResponse(
            request,
            "admin/facilities/kioskdevice/key_issued.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Kiosk key issued"),
                "opts": self.model._meta,
                "device": obj,
                "raw_key": raw_key,
            },
        )

    @admin.action(description=_("Revoke the keys of selected kiosks"), permissions=("change",))
    def revoke(self, request, queryset):
        queryset = queryset.filter(is_active=True)
        if "apply" not in request.POST:
            return TemplateResponse(
                request,
                "admin/facilities/kioskdevice/revoke.html",
                {
                    **self.admin_site.each_context(request),
                    "title": gettext("Revoke kiosk keys"),
                    "opts": self.model._meta,
                    "devices": queryset,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                },
            )
        count = 0
        for device in queryset:
            services.revoke_kiosk_device(device_id=device.pk)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d kiosk key revoked.", "%(count)d kiosk keys revoked.", count)
            % {"count": count},
        )
