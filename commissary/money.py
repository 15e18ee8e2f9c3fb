"""Formatting and parsing money at the edge. Inside the system money is an integer number of fen."""

import re

SYMBOLS = {"CNY": "¥"}


def format_fen(amount_fen: int | None, currency: str = "CNY") -> str:
    """``123450`` -> ``¥1,234.50``; negative amounts as ``-¥12.00``."""
    if amount_fen is None:
        return "—"
    sign = "-" if amount_fen < 0 else ""
    symbol = SYMBOLS.get(currency, f"{currency} ")
    return f"{sign}{symbol}{format_yuan_plain(abs(amount_fen))}"


_YUAN = re.compile(r"(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?")


def parse_yuan(text: str) -> int:
    """``"1,234.50"`` -> ``123450`` fen, exactly (no floats). Thousands separators are
    optional but must group by three; at most two decimals. Raises ValueError otherwise."""
    cleaned = text.strip().removeprefix("¥").strip()
    if not _YUAN.fullmatch(cleaned):
        raise ValueError(cleaned)
    whole, _, fraction = cleaned.replace(",", "").partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0") or 0)


def format_yuan_plain(amount_fen: int, *, grouped: bool = True) -> str:
    """``123450`` -> ``1,234.50``: the form a yuan field shows an amount in; ``grouped=False``
    -> ``1234.50``, exact, for a CSV cell."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    return f"{sign}{yuan:,}.{fen:02d}" if grouped else f"{sign}{yuan}.{fen:02d}"
