"""Exact conversion between integer fen and the providers' amounts: Alipay's yuan strings with
exactly two decimals (``"12.34"``) and WeChat Pay's integer fen. No floats anywhere: a string
that is not exactly ``digits.dd`` (``"12.3"``, ``"12.345"``, ``"1e3"``, ``"-1.00"``) is refused
rather than rounded."""

import re

_YUAN = re.compile(r"(0|[1-9][0-9]{0,15})\.([0-9]{2})")


class MalformedAmount(ValueError):
    pass


def fen_to_yuan(amount_fen: int) -> str:
    if type(amount_fen) is not int or amount_fen < 0:
        raise MalformedAmount(f"not a fen amount: {amount_fen!r}")
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def yuan_to_fen(text: str) -> int:
    match = _YUAN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise MalformedAmount(f"not a yuan amount with two decimals: {text!r}")
    return int(match[1]) * 100 + int(match[2])


def wechat_fen(value) -> int:
    """WeChat Pay's amounts are JSON integers of fen; anything else (a float, a string, a
    boolean) is refused."""
    if type(value) is not int or value < 0:
        raise MalformedAmount(f"not an integer fen amount: {value!r}")
    return value
