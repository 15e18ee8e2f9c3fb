"""Request bodies (strict: unknown fields, wrong JSON types and out-of-range numbers are a
``validation_error``) and the answers' shapes, as the contract in DESIGN.md fixes them.

Amounts are integer fen with a ``currency``; times are ISO 8601 with the facility's offset. The
answer serializers document the shapes for the OpenAPI schema and render them.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from catalog.services import MAX_LINES_PER_ORDER

MAX_QUANTITY = 1000  # no product allows more in one order (catalog.Product's CHECK)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a price, total or balance sent by a kiosk is an error,
    not something quietly ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [_("This field is not part of the request.")]}
                )
        return super().to_internal_value(data)


class JSONIntegerField(serializers.IntegerField):
    """A JSON integer only: no strings, fractions, floats or booleans."""

    default_error_messages = {"invalid": _("A whole number (a JSON integer) is required.")}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONStringField(serializers.CharField):
    default_error_messages = {"invalid": _("A string is required.")}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- requests ---------------------------------------------------------------------------


class SessionRequest(StrictSerializer):
    inmate_number = JSONStringField(
        required=False, max_length=32, help_text="The inmate number (or send `card`)."
    )
    card = JSONStringField(
        required=False, max_length=64, help_text="The token in the QR code of the ID card."
    )
    pin = JSONStringField(max_length=8, min_length=4, help_text="The inmate's 4-8 digit PIN.")

    def validate(self, attrs):
        if ("inmate_number" in attrs) == ("card" in attrs):
            raise serializers.ValidationError(_("Send either inmate_number or card, with pin."))
        return attrs


class SignInByNumber(StrictSerializer):
    inmate_number = JSONStringField(max_length=32, help_text="The inmate number.")
    pin = JSONStringField(max_length=8, min_length=4, help_text="The inmate's 4-8 digit PIN.")


class SignInByCard(StrictSerializer):
    card = JSONStringField(max_length=64, help_text="The token in the QR code of the ID card.")
    pin = JSONStringField(max_length=8, min_length=4, help_text="The inmate's 4-8 digit PIN.")


class OrderLineRequest(StrictSerializer):
    product_id = JSONIntegerField(min_value=1, max_value=2**63 - 1)
    quantity = JSONIntegerField(
        min_value=1,
        max_value=MAX_QUANTITY,
        help_text="1 to the product's `max_per_order`.",
    )


class OrderRequest(StrictSerializer):
    items = serializers.ListField(
        child=OrderLineRequest(), min_length=1, max_length=MAX_LINES_PER_ORDER
    )


def _is_line(item) -> bool:
    return (
        type(item) is dict
        and item.keys() == {"product_id", "quantity"}
        and type(item["product_id"]) is int
        and 1 <= item["product_id"] <= 2**63 - 1
        and type(item["quantity"]) is int
        and 1 <= item["quantity"] <= MAX_QUANTITY
    )


def order_items(data) -> list[dict]:
    """The items of an order body, as ``OrderRequest`` validates them. A body that is plainly
    valid (a kiosk's usual order) is accepted here directly: building ``OrderRequest`` deep-
    copies its fields on every request, a tenth of an order's Python. Any other body goes
    through ``OrderRequest``, which refuses it with its own message. The two accept exactly the
    same bodies (tests/kiosk/test_order_body.py)."""
    items = data.get("items") if type(data) is dict and data.keys() == {"items"} else None
    if (
        type(items) is list
        and 1 <= len(items) <= MAX_LINES_PER_ORDER
        and all(_is_line(item) for item in items)
    ):
        return items
    body = OrderRequest(data=data)
    body.is_valid(raise_exception=True)
    return body.validated_data["items"]


# --- answers ----------------------------------------------------------------------------


class InmateAnswer(serializers.Serializer):
    id = serializers.IntegerField()
    inmate_number = serializers.CharField()
    name = serializers.CharField()


class SessionAnswer(serializers.Serializer):
    session = serializers.CharField(help_text="Send it as `X-Inmate-Session` from now on.")
    expires_at = serializers.DateTimeField(help_text="When the session ends if left idle.")
    inmate = InmateAnswer()


class MonthAnswer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Family deposits credited this month, fen.")
    reserved = serializers.IntegerField(help_text="Family deposits awaiting payment, fen.")
    cap = serializers.IntegerField(help_text="The monthly deposit cap, fen.")
    remaining = serializers.IntegerField(help_text="Room left under the monthly cap, fen.")


class SpendingAnswer(serializers.Serializer):
    period = serializers.ChoiceField(choices=["week", "month"])
    spent = serializers.IntegerField(help_text="Spent this week or month, fen.")
    limit = serializers.IntegerField(
        allow_null=True,
        help_text="The grade's limit now, fen: its festival-month limit in one of the facility's "
        "festival months (when it has one), else its usual limit; null: none.",
    )
    remaining = serializers.IntegerField(allow_null=True)


class BalanceAnswer(serializers.Serializer):
    available = serializers.IntegerField(help_text="Spendable money, fen.")
    held = serializers.IntegerField(help_text="Held money (not spendable), fen.")
    currency = serializers.CharField()
    balance_cap = serializers.IntegerField()
    month = MonthAnswer()
    spending = SpendingAnswer()


class NextPriceAnswer(serializers.Serializer):
    price = serializers.IntegerField(help_text="Fen.")
    effective_on = serializers.DateField(
        help_text="The facility-local date the price takes effect (show: price from <date>)."
    )


class ProductAnswer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField(help_text="In the request's language (Accept-Language).")
    category = serializers.CharField()
    price = serializers.IntegerField(help_text="Fen.")
    currency = serializers.CharField()
    max_per_order = serializers.IntegerField()
    in_stock = serializers.IntegerField(help_text="Units in stock at this facility.")
    next_price = NextPriceAnswer(
        allow_null=True, help_text="A price rise already announced, else null."
    )


class OrderItemAnswer(serializers.Serializer):
    product_id = serializers.IntegerField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.IntegerField()
    line_total = serializers.IntegerField()


class OrderAnswer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["placed", "picked", "delivered", "cancelled"])
    items = OrderItemAnswer(many=True)
    total = serializers.IntegerField()
    currency = serializers.CharField()
    balance_after = serializers.IntegerField(
        help_text="Spendable money right after the order was placed, fen."
    )
    created_at = serializers.DateTimeField()


class StatementLineAnswer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="deposit, purchase, refund, adjustment, hold, …")
    description = serializers.CharField(
        allow_blank=True,
        help_text="What the line is, in the request's language (Accept-Language).",
    )
    memo = serializers.CharField(
        allow_blank=True,
        help_text="The journal's memo as it was written (may be empty); added, read "
        "`description` to show the line.",
    )
    amount = serializers.IntegerField(help_text="Signed fen: negative is money out.")
    account = serializers.ChoiceField(choices=["spendable", "held"])
    currency = serializers.CharField()


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorAnswer(serializers.Serializer):
    error = ErrorDetail()


def page_of(answer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The paginated list of ``answer``: ``{"count", "next", "previous", "results"}``."""
    return type(
        f"Paginated{answer.__name__}List",
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": answer(many=True),
        },
    )


ProductPage = page_of(ProductAnswer)
OrderPage = page_of(OrderAnswer)
StatementPage = page_of(StatementLineAnswer)
