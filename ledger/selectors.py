"""Reads of the ledger that more than one caller needs (admin, kiosk API, pages, reports)."""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone

from .models import Account, Entry, MonthlyPeriod


@dataclass(frozen=True)
class InmateBalance:
    currency: str
    spendable_fen: int
    held_fen: int
    pending_fen: int
    balance_cap_fen: int
    month: dt.date
    month_received_fen: int
    month_reserved_fen: int
    monthly_cap_fen: int
    is_frozen: bool
    is_closed: bool

    @property
    def month_remaining_fen(self) -> int:
        return max(0, self.monthly_cap_fen - self.month_received_fen - self.month_reserved_fen)

    @property
    def balance_room_fen(self) -> int:
        total = self.spendable_fen + self.held_fen + self.pending_fen
        return max(0, self.balance_cap_fen - total)

    @property
    def can_receive_fen(self) -> int:
        """How much more family money the inmate may receive right now."""
        return min(self.month_remaining_fen, self.balance_room_fen)


def inmate_balance(*, inmate, now: dt.datetime | None = None) -> InmateBalance:
    """The inmate's money and the room left under both caps, this facility-local month."""
    accounts = {a.kind: a for a in Account.objects.filter(inmate=inmate)}
    spendable, held = accounts[Account.Kind.SPENDABLE], accounts[Account.Kind.HELD]
    month = inmate.facility.local_month(now or timezone.now())
    period = MonthlyPeriod.objects.filter(inmate=inmate, month=month).first()
    return InmateBalance(
        currency=spendable.currency,
        spendable_fen=spendable.balance_fen,
        held_fen=held.balance_fen,
        pending_fen=spendable.pending_fen,
        balance_cap_fen=spendable.balance_cap_fen,
        month=month,
        month_received_fen=period.received_fen if period else 0,
        month_reserved_fen=period.reserved_fen if period else 0,
        monthly_cap_fen=period.cap_fen if period else inmate.facility.monthly_cap_fen,
        is_frozen=spendable.is_frozen,
        is_closed=spendable.is_closed,
    )


def account_balance_fen(*, account: Account) -> int:
    """An account's balance: the cached one for inmate accounts, derived from the journal
    for system accounts (which are never cached, so no hot path locks them)."""
    if account.balance_fen is not None:
        return account.balance_fen
    return Entry.objects.filter(account=account).aggregate(total=Sum("amount_fen"))["total"] or 0


def statement_entries(*, inmate):
    """The inmate's statement lines (entries on its own accounts), newest first."""
    return (
        Entry.objects.filter(account__inmate=inmate)
        .select_related("transaction", "account")
        .order_by("-transaction__created_at", "-id")
    )


def transfer_excess_fen(*, spendable_fen: int, to_balance_cap_fen: int) -> int:
    """Spendable money a transfer moves to held money: what is over the new facility's
    balance cap (the rule ``services.move_inmate_ledger`` applies under the lock)."""
    return max(0, spendable_fen - to_balance_cap_fen)


def release_payout_fen(*, spendable_fen: int, held_fen: int) -> int:
    """What a release pays out (``services.close_inmate_ledger``): spendable and held money."""
    return spendable_fen + held_fen
