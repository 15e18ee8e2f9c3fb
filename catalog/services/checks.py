"""The order as a kiosk sent it, checked before anything is locked: whole positive
quantities, each product once, at most ``MAX_LINES_PER_ORDER`` lines, and a client key by the
ledger's rule."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from commissary import errors
from ledger import services as ledger_services

MAX_LINES_PER_ORDER = 50
MAX_KEY_LENGTH = ledger_services.MAX_CLIENT_KEY_LENGTH


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    quantity: int


def _is_whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def checked_lines(items) -> list[OrderLine]:
    """The order's lines as the kiosk sent them: whole positive quantities, each product once.
    The per-product maximum is checked against the product under the lock."""
    if not isinstance(items, list | tuple) or not items:
        raise errors.ValidationFailed(_("An order needs at least one item."))
    if len(items) > MAX_LINES_PER_ORDER:
        raise errors.ValidationFailed(
            _("An order holds at most %(count)d different products.")
            % {"count": MAX_LINES_PER_ORDER}
        )
    lines: list[OrderLine] = []
    seen: set[int] = set()
    for item in items:
        if isinstance(item, OrderLine):
            product_id, quantity = item.product_id, item.quantity
        elif isinstance(item, dict) and set(item) == {"product_id", "quantity"}:
            product_id, quantity = item["product_id"], item["quantity"]
        else:
            raise errors.ValidationFailed(_("Each item is a product_id and a quantity."))
        if not _is_whole_number(product_id) or not 1 <= product_id < 2**63:
            raise errors.ValidationFailed(_("A product_id is a positive whole number."))
        if not _is_whole_number(quantity) or quantity < 1:
            raise errors.ValidationFailed(_("A quantity is a whole number of at least 1."))
        if product_id in seen:
            raise errors.ValidationFailed(
                _("Each product may appear only once in an order; raise its quantity instead.")
            )
        seen.add(product_id)
        lines.append(OrderLine(product_id, quantity))
    return lines


def checked_key(idempotency_key) -> str:
    if not ledger_services.is_well_formed_key(idempotency_key, limit=MAX_KEY_LENGTH):
        raise errors.ValidationFailed(
            _("The Idempotency-Key header is 1 to %(limit)d printable ASCII characters.")
            % {"limit": MAX_KEY_LENGTH}
        )
    return idempotency_key
