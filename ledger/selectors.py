"""Reads of the ledger that more than one caller needs (admin, kiosk API, pages, reports)."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from facilities.models import local_date

from .archive import MonthArchived
from .models import (
    Account,
    ArchivedAccountTotal,
    ArchivedDayTotal,
    ArchivedJournalMonth,
    Deposit,
    Entry,
    MonthlyPeriod,
)

# The smallest step of a stored instant: an end instant is the last one it covers plus this.
INSTANT_STEP = dt.timedelta(microseconds=1)


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
    journal = Entry.objects.filter(account=account).aggregate(total=Sum("amount_fen"))["total"]
    archived = ArchivedAccountTotal.objects.filter(account=account).aggregate(
        total=Sum("amount_fen")
    )["total"]
    return (journal or 0) + (archived or 0)


def inmate_balances_before(*, facility, instant: dt.datetime) -> dict[tuple[str, str], dict]:
    """Each inmate's balances at ``facility`` just before ``instant``, summed from the journal
    with the totals of months detached for archive added back (and, for an instant inside such
    a month, its day totals up to the instant): {(inmate number, surname): {account kind: fen}}.

    Raises ``MonthArchived`` when the instant falls inside an archived month whose stored
    totals cannot say what was before it: day totals not kept, or kept for days that the
    instant cuts in two (the facility's timezone is not the one they were cut in)."""
    names = ("account__inmate__inmate_number", "account__inmate__surname", "account__kind")
    inmates = {"account__facility": facility, "account__kind__in": Account.INMATE_KINDS}
    journal = (
        Entry.objects.filter(**inmates, created_at__lt=instant)
        .values(*names)
        .annotate(balance_fen=Sum("amount_fen"))
        .order_by()
    )
    archived = (
        ArchivedAccountTotal.objects.filter(**inmates, archived_month__ends_at__lte=instant)
        .values(*names)
        .annotate(balance_fen=Sum("amount_fen"))
        .order_by()
    )
    inside = ArchivedJournalMonth.objects.filter(starts_at__lt=instant, ends_at__gt=instant).first()
    days: list = []
    if inside is not None:
        cut = ArchivedDayTotal.objects.filter(
            **inmates, archived_month=inside, starts_at__lt=instant, ends_at__gt=instant
        )
        if not inside.has_day_totals or cut.exists():
            raise MonthArchived(
                _(
                    "The balances at this time cannot be given: the journal's entries of "
                    "%(month)s are archived without day totals that end at this facility's "
                    "days. Restore the archived month to read them."
                )
                % {"month": f"{inside.month:%Y-%m}"}
            )
        days = list(
            ArchivedDayTotal.objects.filter(**inmates, archived_month=inside, ends_at__lte=instant)
            .values(*names)
            .annotate(balance_fen=Sum("amount_fen"))
            .order_by()
        )
    balances: dict[tuple[str, str], dict] = {}
    for row in [*journal, *archived, *days]:
        kinds = balances.setdefault((row[names[0]], row[names[1]]), {})
        kinds[row[names[2]]] = kinds.get(row[names[2]], 0) + row["balance_fen"]
    return balances


@dataclass(frozen=True)
class DayTotals:
    """A facility's accounts of one kind summed per facility-local day: ``by_day`` has the days
    with entries (a day whose entries cancel out sums to 0), from the journal and, for days of
    archived months, from their day totals. ``unknown_days`` are days of the range that neither
    can answer for (``day_totals``); they are not in ``by_day``."""

    by_day: dict[dt.date, int]
    unknown_days: tuple[dt.date, ...]


def day_totals(*, facility, kind: str, first: dt.date, last: dt.date) -> DayTotals:
    """The facility's ``kind`` accounts summed per local day from ``first`` to ``last``.

    The journal's entries are grouped by day; each archived month the range touches adds its
    day totals. A day is unknown when it falls in an archived month whose day totals were not
    kept, or when a kept total spans two of this facility's days (cut in another timezone than
    the facility's now): its figure is left out rather than given wrong."""
    tz = ZoneInfo(facility.timezone)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    accounts = {"account__facility": facility, "account__kind": kind}
    # Bounded on both sides by the entries' own date, the journal's partition key: only the
    # months of the range are read.
    by_day = {
        row["day"]: row["amount_fen"]
        for row in Entry.objects.filter(**accounts, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(amount_fen=Sum("amount_fen"))
        .order_by()
    }
    unknown: set[dt.date] = set()

    def days_between(since: dt.datetime, until: dt.datetime) -> set[dt.date]:
        """The facility's days that [since, until) touches."""
        day, last_day = local_date(since, tz.key), local_date(until - INSTANT_STEP, tz.key)
        return {day + dt.timedelta(days=n) for n in range((last_day - day).days + 1)}

    in_range = set(days_between(start, end))
    months = ArchivedJournalMonth.objects.filter(starts_at__lt=end, ends_at__gt=start)
    for month in months:
        if not month.has_day_totals:
            unknown |= days_between(month.starts_at, month.ends_at) & in_range
    archived = ArchivedDayTotal.objects.filter(
        **accounts,
        archived_month__has_day_totals=True,
        starts_at__lt=end,
        ends_at__gt=start,
    ).values_list("starts_at", "ends_at", "amount_fen")
    for starts_at, ends_at, amount_fen in archived:
        touched = days_between(starts_at, ends_at)
        if len(touched) > 1:
            unknown |= touched & in_range
        else:
            (day,) = touched
            by_day[day] = by_day.get(day, 0) + amount_fen
    for day in unknown:
        by_day.pop(day, None)
    return DayTotals(by_day=by_day, unknown_days=tuple(sorted(unknown)))


def statement_entries(*, inmate):
    """The inmate's statement lines (entries on its own accounts), newest first."""
    return (
        Entry.objects.filter(account__inmate=inmate)
        .select_related("transaction", "account")
        .order_by("-transaction__created_at", "-id")
    )


# Balance room shown to families is rounded down to this, so a family cannot work out the
# inmate's balance from it (DESIGN: "Deposits and payments").
BALANCE_ROOM_STEP_FEN = 10_000


@dataclass(frozen=True)
class DepositRoom:
    """How much a family may send an inmate now, as families may see it: never the balance."""

    can_send_fen: int
    month_room_fen: int
    max_deposit_fen: int | None
    max_deposits_per_month: int | None
    deposits_left: int | None
    is_open: bool

    @property
    def is_limited_by_count(self) -> bool:
        return self.deposits_left == 0


def deposit_room(*, inmate, now: dt.datetime | None = None) -> DepositRoom:
    """The smaller of the month's room and the balance room (the latter rounded down to a
    multiple of 100 yuan when it is the smaller), within the facility's single-deposit limit,
    and zero once the month's deposits are used up or the account is frozen or closed.
    The ledger decides again under the lock when a deposit is reserved."""
    balance = inmate_balance(inmate=inmate, now=now)
    facility = inmate.facility
    month_room = balance.month_remaining_fen
    balance_room = balance.balance_room_fen
    if balance_room < month_room:
        room = balance_room - balance_room % BALANCE_ROOM_STEP_FEN
    else:
        room = month_room
    if facility.max_deposit_fen is not None:
        room = min(room, facility.max_deposit_fen)
    deposits_left = None
    if facility.max_deposits_per_month is not None:
        this_month = Deposit.objects.filter(
            inmate=inmate,
            period__month=balance.month,
            status__in=(Deposit.Status.CREATED, Deposit.Status.HELD, Deposit.Status.CREDITED),
        ).count()
        deposits_left = max(0, facility.max_deposits_per_month - this_month)
        if deposits_left == 0:
            room = 0
    is_open = not (balance.is_frozen or balance.is_closed or inmate.is_released)
    return DepositRoom(
        can_send_fen=max(0, room) if is_open else 0,
        month_room_fen=month_room,
        max_deposit_fen=facility.max_deposit_fen,
        max_deposits_per_month=facility.max_deposits_per_month,
        deposits_left=deposits_left,
        is_open=is_open,
    )


def transfer_excess_fen(*, spendable_fen: int, to_balance_cap_fen: int) -> int:
    """Spendable money a transfer moves to held money: what is over the new facility's
    balance cap (the rule ``services.move_inmate_ledger`` applies under the lock)."""
    return max(0, spendable_fen - to_balance_cap_fen)


def release_payout_fen(*, spendable_fen: int, held_fen: int) -> int:
    """What a release pays out (``services.close_inmate_ledger``): spendable and held money."""
    return spendable_fen + held_fen


def needs_approval(*, amount_fen: int, approval_threshold_fen: int) -> bool:
    """The one approval rule (DESIGN.md): every credit needs a second staff member; a debit
    only above the facility's threshold."""
    return amount_fen > 0 or -amount_fen > approval_threshold_fen


def reversal_judged_fen(*, money_added_fen: int, amounts_moved_fen) -> int:
    """The amount a reversal is judged by for approval (``needs_approval``): money it adds to
    the inmate is a credit; a reversal that only moves or removes money is judged by the
    largest amount it moves, like a debit of that amount."""
    return money_added_fen or -max(abs(amount) for amount in amounts_moved_fen)


def release_needs_approval(
    *, payout_fen: int, approval_threshold_fen: int, is_frozen: bool = False
) -> bool:
    """Whether a release paying out ``payout_fen`` waits for a second trust officer: a payout
    is a debit of the inmate (``services.close_inmate_ledger`` enforces it under the lock),
    and a frozen account's money leaves only with a second person, whatever the amount."""
    if is_frozen and payout_fen > 0:
        return True
    return needs_approval(amount_fen=-payout_fen, approval_threshold_fen=approval_threshold_fen)
