"""The hook that lets a paid deposit be held for review before it is credited.

``payments`` sits below the monitoring app, so it does not know any rule: at start-up the
monitoring app registers a screener here, and ``payments.services`` asks it, for every payment
that settles, which rules fire (``fired``, given the deposit and its payer's keyed hash) and
records a hold (``record_hold``) in the same transaction that marks the deposit held. With no
screener registered, or no rule firing, a settled payment is credited as before.
"""

import datetime as dt
from typing import Protocol


class Screener(Protocol):
    def fired(self, *, deposit, payer_fingerprint: str, now: dt.datetime) -> list: ...

    def record_hold(self, *, deposit, fired: list, now: dt.datetime) -> None: ...


_screeners: list[Screener] = []


def register_screener(screener: Screener) -> None:
    _screeners[:] = [s for s in _screeners if type(s) is not type(screener)] + [screener]


def fired_rules(*, deposit, payer_fingerprint: str = "", now: dt.datetime) -> list:
    """The rules a paid deposit fires; ``payer_fingerprint`` is its payer's keyed hash
    (``payments.payers``), empty when the provider named no payer."""
    return [
        rule
        for screener in _screeners
        for rule in screener.fired(deposit=deposit, payer_fingerprint=payer_fingerprint, now=now)
    ]


def record_hold(*, deposit, fired: list, now: dt.datetime) -> None:
    for screener in _screeners:
        screener.record_hold(deposit=deposit, fired=fired, now=now)
