import json

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin

from . import credentials
from .models import MerchantAccount, Payment


@admin.register(Payment)
class PaymentAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """Read-only: payments change only through provider callbacks and polls. Staff see their
    facilities' payments only."""

    facility_field = "deposit__facility"

    list_display = ("provider_reference", "provider", "amount_fen", "currency", "status")
    list_filter = ("status", "provider")
    search_fields = ("provider_reference",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MerchantAccountForm(forms.ModelForm):
    """The keys are typed in once and stored encrypted; the form never shows them again. Left
    empty on a change, the stored ones stay."""

    secrets = forms.CharField(
        label=_("Keys and secrets (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"autocomplete": "off", "rows": 8}),
        help_text=_(
            "A JSON object with the account's fields, as docs/payments.md lists them. "
            "Never shown again; leave empty to keep the stored ones."
        ),
    )

    class Meta:
        model = MerchantAccount
        fields = ("facility", "provider", "is_enabled")

    def clean(self):
        cleaned = super().clean()
        text = cleaned.get("secrets", "").strip()
        provider = cleaned.get("provider")
        if not text:
            if not self.instance.pk:
                raise forms.ValidationError(_("Enter the account's keys and secrets."))
            return cleaned
        try:
            config = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("The keys and secrets are not valid JSON.")) from None
        if not isinstance(config, dict) or not credentials.is_complete(provider, config):
            missing = ", ".join(credentials.REQUIRED.get(provider, ()))
            raise forms.ValidationError(
                _("The account needs all of these fields: %(fields)s.") % {"fields": missing}
            )
        cleaned["config"] = config
        return cleaned

    def save(self, commit=True):
        account = super().save(commit=False)
        config = self.cleaned_data.get("config")
        if config is not None:
            account.merchant_id = config[credentials.MERCHANT_ID_FIELD[account.provider]]
            account.secrets_encrypted = credentials.encrypt_config(config)
        if commit:
            account.save()
        return account


@admin.register(MerchantAccount)
class MerchantAccountAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """Which providers a facility has its own merchant account for, and whether each is
    enabled. The secrets are write-only: no list, page or export shows them."""

    form = MerchantAccountForm
    list_display = ("facility", "provider", "merchant_id", "is_enabled", "updated_at")
    list_filter = ("provider", "is_enabled")
    readonly_fields = ("merchant_id", "updated_at")
    fields = ("facility", "provider", "is_enabled", "secrets", "merchant_id", "updated_at")
