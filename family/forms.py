"""Family page forms. Amounts are typed in yuan (``123.45``) and turned into fen exactly:
no floats, no rounding; anything else gets a sentence saying what to type."""

import re
import unicodedata

from django import forms
from django.utils.translation import gettext_lazy as _

from facilities.models import Facility
from ledger.provider_words import PROVIDER_NAMES
from ledger.services import MAX_AMOUNT_FEN

_YUAN = re.compile(r"^(\d{1,9})(?:\.(\d{1,2}))?$")


def yuan_to_fen(text: str) -> int:
    """``"123.45"`` -> ``12345``. Raises ValidationError with a sentence for anything else."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip().lstrip("¥").replace(",", "")
    cleaned = cleaned.strip()
    if not cleaned:
        raise forms.ValidationError(_("Type the amount to send, in yuan."), code="required")
    match = _YUAN.match(cleaned)
    if match is None:
        raise forms.ValidationError(
            _(
                "Type the amount in yuan with digits, and at most two after the point, "
                "such as 123.45."
            ),
            code="invalid",
        )
    whole, cents = match.groups()
    amount_fen = int(whole) * 100 + int((cents or "").ljust(2, "0"))
    if amount_fen <= 0:
        raise forms.ValidationError(_("The amount must be more than zero."), code="min")
    if amount_fen > MAX_AMOUNT_FEN:
        raise forms.ValidationError(_("This amount is too large."), code="max")
    return amount_fen


class YuanAmountField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})

    def clean(self, value):
        return yuan_to_fen(super().clean(value) if value else value)


class LinkForm(forms.Form):
    facility = forms.ModelChoiceField(
        queryset=Facility.objects.order_by("name"),
        label=_("Facility"),
        empty_label=_("Choose the facility"),
    )
    inmate_number = forms.CharField(
        label=_("Inmate number"),
        max_length=32,
        help_text=_("As the facility wrote it to you."),
    )
    surname = forms.CharField(
        label=_("Surname"), max_length=100, help_text=_("The person's family name.")
    )


class DepositAmountForm(forms.Form):
    amount = YuanAmountField(
        label=_("Amount (yuan)"), help_text=_("For example 200 or 123.45."), required=False
    )


class DepositConfirmForm(forms.Form):
    amount_fen = forms.IntegerField(min_value=1, max_value=MAX_AMOUNT_FEN, widget=forms.HiddenInput)
    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)
    provider = forms.ChoiceField(label=_("Pay with"), widget=forms.RadioSelect, required=False)

    def __init__(self, *args, providers=(), **kwargs):
        """``providers``: the names the facility offers (``payments.providers``); with only
        one there is nothing to choose, so it is sent hidden."""
        super().__init__(*args, **kwargs)
        field = self.fields["provider"]
        field.choices = [(name, PROVIDER_NAMES.get(name, name)) for name in providers]
        if len(providers) == 1:
            field.widget = forms.HiddenInput()
            field.initial = providers[0]
        elif providers:
            field.initial = providers[0]
        self.providers = list(providers)

    def clean_provider(self):
        """Not sent (an older page): the first one offered."""
        chosen = self.cleaned_data.get("provider") or (self.providers or [""])[0]
        if not chosen:
            raise forms.ValidationError(_("This facility accepts no online payments yet."))
        return chosen


class CloseAccountForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    understood = forms.BooleanField(
        label=_("I understand that closing my account cannot be undone."),
        label_suffix="",  # a sentence, shown beside its box
        required=True,
    )
