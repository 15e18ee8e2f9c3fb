"""Form fields for money typed by staff: amounts are typed and shown in yuan (``1,234.50``) and
converted exactly to fen, never through a float."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .money import format_yuan_plain, parse_yuan
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
