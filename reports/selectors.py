"""Reads behind the dashboard and the reports: set-based queries over the journal, the
deposits and the periods, always for a set of facilities the viewer may see. Amounts are fen;
days are the facility's local days."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from catalog import selectors as catalog_selectors
from facilities.models import local_date
from ledger import selectors as ledger_selectors
from ledger.models import Account, Deposit, MonthlyPeriod, ScheduledRun

NEAR_CAP_SHARE = 0.9  # "near a cap": at least 90% of it used


def _local_day_range(days: int, tz: ZoneInfo, today: dt.date | None = None):
    today = today or local_date(timezone.now(), tz.key)
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    return [first + dt.timedelta(days=n) for n in range(days)], start


def deposits_per_day(*, facility, days: int = 90, today: dt.date | None = None):
    """(day, number credited, amount credited in fen) for each of the last ``days`` days."""
    tz = ZoneInfo(facility.timezone)
    day_list, start = _local_day_range(days, tz, today)
    rows = (
        Deposit.objects.filter(facility=facility, status="credited", resolved_at__gte=start)
        .annotate(day=TruncDate("resolved_at", tzinfo=tz))
        .values("day")
        .annotate(count=Count("id"), amount_fen=Sum("amount_fen"))
    )
    by_day = {row["day"]: (row["count"], row["amount_fen"]) for row in rows}
    return [(day, *by_day.get(day, (0, 0))) for day in day_list]


def sales_per_day(*, facility, days: int = 90, today: dt.date | None = None):
    """(rows, unknown days): rows of (day, net sales in fen: purchases less refunds) for each of
    the last ``days`` days, the amount None on a day of an archived month whose figure the
    stored totals cannot give (``ledger.selectors.day_totals``), which are the unknown days."""
    tz = ZoneInfo(facility.timezone)
    day_list, _start = _local_day_range(days, tz, today)
    totals = ledger_selectors.day_totals(
        facility=facility, kind=Account.Kind.SALES, first=day_list[0], last=day_list[-1]
    )
    unknown = set(totals.unknown_days)
    rows = [(day, None if day in unknown else totals.by_day.get(day, 0)) for day in day_list]
    return rows, totals.unknown_days


@dataclass(frozen=True)
class CapUse:
    inmates: int
    at_monthly_cap: int
    near_monthly_cap: int
    at_balance_cap: int
    near_balance_cap: int


def cap_use(*, facility, now: dt.datetime | None = None) -> CapUse:
    """How many open inmates are at, or near, each cap this facility-local month."""
    month = facility.local_month(now or timezone.now())
    periods = MonthlyPeriod.objects.filter(facility=facility, month=month, inmate__status="active")
    used = F("received_fen") + F("reserved_fen")
    monthly = periods.aggregate(
        at=Count("id", filter=Q(received_fen__gte=F("cap_fen") - F("reserved_fen"))),
        near=Count("id", filter=Q(cap_fen__lte=used / NEAR_CAP_SHARE)),
    )
    spendable = Account.objects.filter(
        facility=facility, kind=Account.Kind.SPENDABLE, is_closed=False
    ).annotate(
        held_fen=Subquery(
            Account.objects.filter(inmate_id=OuterRef("inmate_id"), kind=Account.Kind.HELD).values(
                "balance_fen"
            )[:1]
        )
    )
    total = F("balance_fen") + F("pending_fen") + F("held_fen")
    balance = spendable.aggregate(
        inmates=Count("id"),
        at=Count("id", filter=Q(balance_cap_fen__lte=total)),
        near=Count("id", filter=Q(balance_cap_fen__lte=total / NEAR_CAP_SHARE)),
    )
    return CapUse(
        inmates=balance["inmates"],
        at_monthly_cap=monthly["at"],
        near_monthly_cap=monthly["near"] - monthly["at"],
        at_balance_cap=balance["at"],
        near_balance_cap=balance["near"] - balance["at"],
    )


def money_in_trust_fen(*, facility) -> int:
    """Spendable and held money of every inmate at the facility."""
    total = Account.objects.filter(facility=facility, kind__in=Account.INMATE_KINDS).aggregate(
        total=Sum("balance_fen")
    )["total"]
    return total or 0


def pending_deposits(*, facility) -> tuple[int, int]:
    """(number, amount in fen) of deposits awaiting payment."""
    row = Deposit.objects.filter(facility=facility, status="created").aggregate(
        count=Count("id"), amount_fen=Sum("amount_fen")
    )
    return row["count"], row["amount_fen"] or 0


def latest_reconciliation(*, facility) -> ScheduledRun | None:
    """The newest reconciliation run that covered this facility (its own or the whole ledger)."""
    return (
        ScheduledRun.objects.filter(kind=ScheduledRun.Kind.RECONCILIATION)
        .filter(Q(facility=facility) | Q(facility__isnull=True))
        .order_by("-started_at")
        .first()
    )


def disabled_money_schedules() -> list[str]:
    """Names of the scheduled money tasks that are switched off (the schedules are global)."""
    return list(
        PeriodicTask.objects.filter(task__startswith="ledger.tasks.", enabled=False)
        .order_by("name")
        .values_list("name", flat=True)
    )


def low_stock_products(*, facility) -> list:
    """Products running low at the facility (``catalog.selectors.low_stock_products``)."""
    return list(catalog_selectors.low_stock_products(facility=facility))


# --- reports ------------------------------------------------------------------------------


def sales_by_product(*, facility, first: dt.date, last: dt.date):
    """Rows of (SKU, Chinese name, English name, units, sales fen) from ``first`` to ``last``
    (facility days), orders not cancelled."""
    tz = ZoneInfo(facility.timezone)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return catalog_selectors.sales_by_product(facility=facility, start=start, end=end)


def deposits_by_day_and_provider(*, facility, first: dt.date, last: dt.date):
    """Rows of (day, provider, deposits credited, amount fen, fees fen)."""
    tz = ZoneInfo(facility.timezone)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return [
        (row["day"], row["provider"], row["count"], row["amount_fen"], row["fee_fen"])
        for row in Deposit.objects.filter(
            facility=facility, status="credited", resolved_at__gte=start, resolved_at__lt=end
        )
        .annotate(day=TruncDate("resolved_at", tzinfo=tz))
        .values("day", "provider")
        .annotate(count=Count("id"), amount_fen=Sum("amount_fen"), fee_fen=Sum("fee_fen"))
        .order_by("day", "provider")
    ]


def trust_balances_at(*, facility, day: dt.date):
    """Rows of (inmate number, name, spendable fen, held fen) at the end of ``day`` (facility
    time), summed from the journal (and the totals kept for archived months), for every inmate
    with an account at the facility then. Raises ``ledger.archive.MonthArchived`` for a day the
    kept totals cannot answer for (``ledger.selectors.inmate_balances_before``)."""
    tz = ZoneInfo(facility.timezone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    balances = ledger_selectors.inmate_balances_before(facility=facility, instant=end)
    return [
        (number, surname, kinds.get("spendable", 0), kinds.get("held", 0))
        for (number, surname), kinds in sorted(balances.items())
    ]


def monthly_cap_report(*, facility, month: dt.date):
    """Rows of (inmate number, name, received fen, reserved fen, cap fen, remaining fen)."""
    return [
        (
            period.inmate.inmate_number,
            period.inmate.surname,
            period.received_fen,
            period.reserved_fen,
            period.cap_fen,
            period.remaining_fen,
        )
        for period in MonthlyPeriod.objects.filter(facility=facility, month=month)
        .select_related("inmate")
        .order_by("inmate__inmate_number")
    ]


def fees_collected(*, facility, first: dt.date, last: dt.date):
    """(rows, unknown days): rows of (day, fees fen) collected on credited deposits, for the days
    with fee entries; days of an archived month whose figure the stored totals cannot give are
    left out of the rows and listed as unknown (``ledger.selectors.day_totals``)."""
    totals = ledger_selectors.day_totals(
        facility=facility, kind=Account.Kind.FEES, first=first, last=last
    )
    return sorted(totals.by_day.items()), totals.unknown_days
