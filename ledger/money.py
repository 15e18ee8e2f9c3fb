"""Formatting money at the edge. Inside the system money is an integer number of fen."""

SYMBOLS = {"CNY": "¥"}


def format_fen(amount_fen: int | None, currency: str = "CNY") -> str:
    """``123450`` -> ``¥1,234.50``; negative amounts as ``-¥12.00``."""
    if amount_fen is None:
        return "—"
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    symbol = SYMBOLS.get(currency, f"{currency} ")
    return f"{sign}{symbol}{yuan:,}.{fen:02d}"
