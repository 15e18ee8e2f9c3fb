"""Form fields for money typed by staff: amounts are typed and shown in yuan (``1,234.50``) and
converted exactly to fen, never through a float."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from commissary.money import format_yuan_plain, parse_yuan

from .services import MAX_AMOUNT_FEN


class YuanField(forms.CharField):
    """An amount in yuan, cleaned to an integer number of fen."""

    default_error_messages = {
        "invalid": _("Type an amount in yuan, such as 1,234.50 (at most two decimals)."),
        "too_small": _("The amount must be more than zero."),
        "too_large": _("That amount is larger than any the ledger accepts."),
    }

    def __init__(self, *, allow_zero: bool = False, **kwargs):
        self.allow_zero = allow_zero
        kwargs.setdefault("help_text", _("In yuan, for example 1,234.50."))
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("inputmode", "decimal")

    def prepare_value(self, value):
        return format_yuan_plain(value) if isinstance(value, int) else value

    def to_python(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            # Typed amounts arrive as text; an int is the form's initial value, already in fen
            # (what a disabled field cleans), and must not be read again as yuan.
            return value
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            if len(value) > 24:
                raise ValueError(value)
            amount_fen = parse_yuan(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if amount_fen == 0 and not self.allow_zero:
            raise forms.ValidationError(self.error_messages["too_small"], code="too_small")
        if amount_fen > MAX_AMOUNT_FEN:
            raise forms.ValidationError(self.error_messages["too_large"], code="too_large")
        return amount_fen


class YuanAmountsForm(forms.ModelForm):
    """A model form whose amounts are typed and shown in yuan: ``yuan_amounts`` maps each
    yuan form field to the fen model field it sets."""

    yuan_amounts: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for yuan_field, fen_field in self.yuan_amounts.items():
            self.fields[yuan_field].initial = getattr(self.instance, fen_field)

    def clean(self):
        cleaned_data = super().clean()
        for yuan_field, fen_field in self.yuan_amounts.items():
            if yuan_field in cleaned_data:  # valid; an optional one left empty is None
                setattr(self.instance, fen_field, cleaned_data[yuan_field])
        return cleaned_data

    def _update_errors(self, errors):
        # The model's own checks (``Model.clean``) name its fen fields, which are not on the
        # form: show them at the yuan field the amount was typed in.
        if hasattr(errors, "error_dict"):
            yuan_field_of = {fen: yuan for yuan, fen in self.yuan_amounts.items()}
            errors = ValidationError(
                {
                    yuan_field_of.get(field, field): messages
                    for field, messages in errors.error_dict.items()
                }
            )
        super()._update_errors(errors)
