"""Inmates: intake (the add form), the record, its money at a glance and links to its
records, roster import. Transfer and release are ``moves``."""

import hashlib

from django import forms
from django.contrib import admin
from django.core.validators import RegexValidator
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportMixin

from accounts.admin_scope import FacilityScopedAdmin
from commissary.errors import DomainError
from commissary.money import format_fen
from ledger.selectors import (
    inmate_balance,
)

from .. import services
from ..models import HousingUnit, Inmate
from ..roster import InmateRosterResource
from .moves import InmateMovesAdminMixin


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
class InmateAdmin(InmateMovesAdminMixin, ImportMixin, FacilityScopedAdmin, admin.ModelAdmin):
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

    def process_dataset(self, dataset, form, request, **kwargs):
        """The confirmed import. Its rows are bulk-inserted (no entry per inmate), so one audit
        entry per facility sums it up: who, how many rows and inmates admitted, the file's
        name and SHA-256 (read from the stored upload, before the library removes it)."""
        storage = self.get_tmp_storage_class()(
            name=form.cleaned_data["import_file_name"],
            read_mode="rb",
            **self.get_tmp_storage_class_kwargs(),
        )
        uploaded = storage.read()
        if isinstance(uploaded, str):
            uploaded = uploaded.encode()
        result = super().process_dataset(dataset, form, request, **kwargs)
        if not result.has_errors() and not result.has_validation_errors():
            admitted: dict[int, int] = {}
            for row in result.rows:
                if row.is_new() and row.instance is not None:
                    facility_id = row.instance.facility_id
                    admitted[facility_id] = admitted.get(facility_id, 0) + 1
            services.record_roster_import(
                staff_id=request.user.pk,
                file_name=form.cleaned_data.get("original_file_name") or "",
                sha256=hashlib.sha256(uploaded).hexdigest(),
                rows=result.total_rows,
                admitted_by_facility=admitted,
            )
        return result

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
