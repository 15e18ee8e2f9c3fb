import json

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_scope import FacilityScopedAdmin

from . import credentials, services
from .models import MerchantAccount, Payment, ProviderCall


@admin.register(Payment)
class PaymentAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """Read-only: payments change only through provider callbacks and polls. Staff see their
    facilities' payments only."""

    facility_field = "deposit__facility"

    list_display = ("provider_reference", "provider", "amount_fen", "currency", "status")
    list_filter = ("status", "provider")
    search_fields = ("provider_reference",)
    # The payer's name a provider returned is for security officers, on a hold's page.
    exclude = ("payer_name",)

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
        unreadable = credentials.unreadable_key_fields(provider, config)
        if unreadable:
            raise forms.ValidationError(
                _(
                    "These keys cannot be read: %(fields)s. Paste each as PEM text "
                    "(-----BEGIN … KEY-----) or as the base64 text the provider's console shows."
                )
                % {"fields": ", ".join(unreadable)}
            )
        # Stored as PEM, so a key pasted as bare base64 works as it is.
        cleaned["config"] = credentials.with_pem_keys(provider, config)
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
    list_display = (
        "facility",
        "provider",
        "merchant_id",
        "is_enabled",
        "keys_readable",
        "updated_at",
    )
    list_filter = ("provider", "is_enabled")
    readonly_fields = ("merchant_id", "updated_at")
    fields = ("facility", "provider", "is_enabled", "secrets", "merchant_id", "updated_at")

    @admin.display(boolean=True, description=_("Keys readable"))
    def keys_readable(self, obj):
        return credentials.is_readable(obj)

    def changelist_view(self, request, extra_context=None):
        for account in credentials.unreadable_accounts(
            self.get_queryset(request).select_related("facility")
        ):
            self.message_user(
                request,
                _(
                    "The keys of %(account)s at %(facility)s cannot be read: families cannot "
                    "pay through it until they are entered again."
                )
                % {"account": account, "facility": account.facility},
                messages.ERROR,
            )
        return super().changelist_view(request, extra_context)


class StillFailingFilter(admin.SimpleListFilter):
    title = _("outcome")
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [
            ("failing", _("Failing (tried and not done)")),
            ("gave_up", _("Gave up: needs staff")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "failing":
            return queryset.exclude(state=ProviderCall.State.DONE).filter(attempts__gt=0)
        if self.value() == "gave_up":
            return queryset.filter(state=ProviderCall.State.GAVE_UP)
        return queryset


@admin.register(ProviderCall)
class ProviderCallAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """The provider outbox, read-only: the refunds (and other provider calls) decided in a
    money transaction and made after it, with their attempts and last error. A call that keeps
    failing stays here for staff, who may try it again now (``retry_now``)."""

    list_display = (
        "created_at",
        "facility",
        "kind",
        "payment",
        "request_number",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    list_filter = (StillFailingFilter, "state", "kind", "facility")
    search_fields = ("request_number", "payment__provider_reference")
    list_select_related = ("facility", "payment")
    ordering = ("-created_at",)
    actions = ("retry_now",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request):
        return request.user.has_perm("payments.retry_providercall")

    @admin.action(description=_("Retry the selected calls now"), permissions=["retry"])
    def retry_now(self, request, queryset):
        retried = [
            services.retry_provider_call_now(call_id=call_id, staff_id=request.user.pk)
            for call_id in queryset.exclude(state=ProviderCall.State.DONE).values_list(
                "pk", flat=True
            )
        ]
        self.message_user(
            request,
            ngettext(
                "%(count)d call will be tried again now.",
                "%(count)d calls will be tried again now.",
                len(retried),
            )
            % {"count": len(retried)},
            messages.SUCCESS,
        )
