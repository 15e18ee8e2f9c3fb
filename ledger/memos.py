"""The journal's memos, written once and read in the reader's language.

A transaction's memo is stored as it was written and never changed (the journal is
append-only, and the auditor reads it as it was): the staff's own words for an adjustment, a
hold or a cancellation, and for what the system writes, one English sentence of a fixed shape
made here (``purchase_memo``, ``line_refund_memo``, ``transfer_excess_memo``,
``PAYOUT_MEMO``). ``shown_memo`` reads such a sentence back, old rows included (the shapes
are the ones written since the first release), and gives it in the active language (a line
refund's product by its name in that language, as its order line keeps it); anything
else (a person's words) is shown as written. ``description`` is what a statement line says:
the memo in the reader's language, else the transaction kind's label.
"""

import re
from collections.abc import Callable

from django.utils.translation import get_language, gettext, gettext_noop

_PURCHASE = re.compile(r"Commissary order #(?P<order>\d+)")
_LINE_REFUND = re.compile(
    r"Refund for order #(?P<order>\d+), line (?P<quantity>\d+) × (?P<product>.*): (?P<reason>.*)",
    re.DOTALL,
)
_TRANSFER_EXCESS = re.compile(r"Over the balance cap of (?P<facility>.+)", re.DOTALL)
PAYOUT_MEMO = "Paid out on release"

# The shapes above as the catalogues know them (``shown_memo`` looks them up).
_PURCHASE_WORDS = gettext_noop("Commissary order #%(order)s")
_LINE_REFUND_WORDS = gettext_noop(
    "Refund for order #%(order)s, line %(quantity)s × %(product)s: %(reason)s"
)
_TRANSFER_EXCESS_WORDS = gettext_noop("Over the balance cap of %(facility)s")
_PAYOUT_WORDS = gettext_noop("Paid out on release")


# The catalogue, above the ledger, registers at start-up how a line refund's product is named
# in a language: (order id, the English name the memo holds, language) -> the name, or None to
# keep the memo's. With none registered, the memo's English name is shown.
ProductNamer = Callable[..., str | None]
_product_namers: list[ProductNamer] = []


def register_product_namer(namer: ProductNamer) -> None:
    if namer not in _product_namers:
        _product_namers.append(namer)


def _product_name(order_id: str, name_en: str) -> str:
    language = get_language() or ""
    for namer in _product_namers:
        if name := namer(order_id=int(order_id), name_en=name_en, language=language):
            return name
    return name_en


def purchase_memo(order_id: int) -> str:
    return f"Commissary order #{order_id}"


def line_refund_memo(*, order_id: int, quantity: int, product: str, reason: str) -> str:
    """``reason`` in English (the refund reason's label, looked up again when shown)."""
    return f"Refund for order #{order_id}, line {quantity} × {product}: {reason}"


def transfer_excess_memo(facility_name: str) -> str:
    return f"Over the balance cap of {facility_name}"


def shown_memo(memo: str) -> str:
    """``memo`` in the active language when the system wrote it, else as written."""
    if not memo:
        return ""
    if memo == PAYOUT_MEMO:
        return gettext(_PAYOUT_WORDS)
    if match := _PURCHASE.fullmatch(memo):
        return gettext(_PURCHASE_WORDS) % match.groupdict()
    if match := _LINE_REFUND.fullmatch(memo):
        # The reason was written as its English label: its translation is the label's own;
        # the product, by its English name: the catalogue names it in the reader's language.
        words = {
            **match.groupdict(),
            "product": _product_name(match["order"], match["product"]),
            "reason": gettext(match["reason"]),
        }
        return gettext(_LINE_REFUND_WORDS) % words
    if match := _TRANSFER_EXCESS.fullmatch(memo):
        return gettext(_TRANSFER_EXCESS_WORDS) % match.groupdict()
    return memo


def is_system_memo(memo: str) -> bool:
    """Whether the system wrote ``memo`` (in English, in one of the shapes above)."""
    return memo == PAYOUT_MEMO or any(
        shape.fullmatch(memo) for shape in (_PURCHASE, _LINE_REFUND, _TRANSFER_EXCESS)
    )


def description(*, kind_label, memo: str) -> str:
    """What a statement line says: the memo in the reader's language, else the kind."""
    return shown_memo(memo) or str(kind_label)
