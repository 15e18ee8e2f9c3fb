"""Which of a facility's rules fire on a paid deposit (``payments.screening`` asks).

Two statements at most, whatever the number of rules. The rule look-up (``rule_facility_active``)
carries what the single-row rules need: the month's cap and received money for a near-cap rule
and the depositor's sign-up time for a new-depositor rule, each a sub-select PostgreSQL runs
only when a row of that kind comes back (so with no active rule it is the one indexed query it
always was). Then, only when a counting rule is active, ONE aggregate counts every window rule
at once (``COUNT(...) FILTER (WHERE ...)`` per rule) over the paid deposits of this deposit's
depositor, inmate and payment source since the earliest window start: three indexed branches
(``deposit_depositor_newest``, ``deposit_inmate_newest``, and the payer's deposits through
``payment_payer``) that PostgreSQL ORs in one bitmap scan. A window of D days is today and the
D - 1 days before it, in the facility's own calendar.

The payment source is the payer the provider named, as its keyed hash
(``payments.payers``): a deposit whose provider named no payer fires no payment-source rule.

Only when a rule fired, one more indexed statement reads the deposit's active auto-accepted
pairs (its depositor's and its payment source's, with this inmate), and drops the fired rules
whose kinds they skip; the others still hold the deposit.
"""

import datetime as dt
import operator
from functools import reduce
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db.models import BooleanField, Case, Count, Func, Q, Subquery, Sum, When

from facilities.models import local_date
from ledger.models import Deposit, MonthlyPeriod
from payments.models import Payment

from .models import AutoAccept, Hold, Rule, RuleVersion

PAID = (Deposit.Status.HELD, Deposit.Status.CREDITED)
Kind = Rule.Kind

# The counting rules, by the party whose deposits they count.
DEPOSITOR_WINDOWS = (Kind.DEPOSITS_FROM_DEPOSITOR, Kind.INMATES_FROM_DEPOSITOR)
INMATE_WINDOWS = (Kind.DEPOSITORS_TO_INMATE, Kind.SOURCES_TO_INMATE)
SOURCE_WINDOWS = (Kind.DEPOSITS_FROM_SOURCE, Kind.INMATES_FROM_SOURCE, Kind.DEPOSITORS_FROM_SOURCE)
WINDOW_KINDS = DEPOSITOR_WINDOWS + INMATE_WINDOWS + SOURCE_WINDOWS
# Rules about the depositor (a deposit with none fires none of them) and about the payment
# source (a deposit whose provider named no payer fires none of them).
NEEDS_DEPOSITOR = (*DEPOSITOR_WINDOWS, Kind.DEPOSITORS_TO_INMATE, Kind.NEW_DEPOSITOR)
NEEDS_PAYER = (*SOURCE_WINDOWS, Kind.SOURCES_TO_INMATE, Kind.MONITORED_SOURCE)


def window_start(now: dt.datetime, timezone_name: str, days: int) -> dt.datetime:
    """Local midnight starting a window of ``days`` whole facility-local days ending today."""
    first_day = local_date(now, timezone_name) - dt.timedelta(days=max(days, 1) - 1)
    return dt.datetime.combine(first_day, dt.time.min, tzinfo=ZoneInfo(timezone_name))


class _AmongArray(Func):
    """``id = ANY(ARRAY(SELECT ...))``: unlike ``id IN (SELECT ...)``, which PostgreSQL can only
    apply as a filter to every row once it is OR-ed with other conditions, this is an index
    condition on the primary key, so it joins the other branches in one bitmap scan."""

    arg_joiner = " = ANY(ARRAY"
    template = "%(expressions)s)"
    output_field = BooleanField()

    def as_sql(self, compiler, connection, **extra_context):
        if connection.vendor != "postgresql":
            extra_context.update(arg_joiner=" IN ", template="%(expressions)s")
        return super().as_sql(compiler, connection, **extra_context)


def _active_rules(deposit) -> list[Rule]:
    """The facility's active rules, each near-cap rule with the month's figures and each
    new-depositor rule with the depositor's sign-up time."""
    period = MonthlyPeriod.objects.filter(pk=deposit.period_id).order_by()
    joined = get_user_model().objects.filter(pk=deposit.depositor_id).order_by()
    near_cap = Q(kind=Kind.NEAR_MONTHLY_CAP)
    return list(
        Rule.objects.filter(facility_id=deposit.facility_id, is_active=True).annotate(
            period_cap_fen=Case(When(near_cap, then=Subquery(period.values("cap_fen")))),
            period_received_fen=Case(When(near_cap, then=Subquery(period.values("received_fen")))),
            depositor_joined=Case(
                When(kind=Kind.NEW_DEPOSITOR, then=Subquery(joined.values("date_joined")))
            ),
        )
    )


def _window_count(rule: Rule, deposit, payer: str, since: dt.datetime) -> Count:
    """What one window rule counts, as a filtered aggregate over the paid deposits around this
    one (others than it, since the earliest window start)."""
    in_window = Q(created_at__gte=since)
    payer_field = "payment__payer_fingerprint"
    if rule.kind == Kind.DEPOSITS_FROM_DEPOSITOR:
        return Count("pk", filter=in_window & Q(depositor_id=deposit.depositor_id))
    if rule.kind == Kind.INMATES_FROM_DEPOSITOR:
        others = in_window & Q(depositor_id=deposit.depositor_id) & ~Q(inmate_id=deposit.inmate_id)
        return Count("inmate_id", distinct=True, filter=others)
    if rule.kind == Kind.DEPOSITORS_TO_INMATE:
        others = in_window & Q(inmate_id=deposit.inmate_id) & ~Q(depositor_id=deposit.depositor_id)
        return Count("depositor_id", distinct=True, filter=others)
    if rule.kind == Kind.SOURCES_TO_INMATE:
        others = in_window & Q(inmate_id=deposit.inmate_id)
        others &= ~Q(**{payer_field: ""}) & ~Q(**{payer_field: payer})
        return Count(payer_field, distinct=True, filter=others)
    from_payer = in_window & Q(**{payer_field: payer})
    if rule.kind == Kind.DEPOSITS_FROM_SOURCE:
        return Count("pk", filter=from_payer)
    if rule.kind == Kind.INMATES_FROM_SOURCE:
        others = from_payer & ~Q(inmate_id=deposit.inmate_id)
        return Count("inmate_id", distinct=True, filter=others)
    # DEPOSITORS_FROM_SOURCE
    others = from_payer & Q(depositor_id__isnull=False)
    if deposit.depositor_id is not None:
        others &= ~Q(depositor_id=deposit.depositor_id)
    return Count("depositor_id", distinct=True, filter=others)


def _window_counts(
    rules: list[Rule], deposit, payer: str, now: dt.datetime, timezone_name: str
) -> dict[int, int]:
    """Every window rule's count in ONE aggregate (keyed by rule id); no query without one."""
    if not rules:
        return {}
    starts = {rule.pk: window_start(now, timezone_name, rule.days or 1) for rule in rules}
    kinds = {rule.kind for rule in rules}
    branches = []
    if kinds & set(DEPOSITOR_WINDOWS):
        branches.append(Q(depositor_id=deposit.depositor_id))
    if kinds & set(INMATE_WINDOWS):
        branches.append(Q(inmate_id=deposit.inmate_id))
    if kinds & set(SOURCE_WINDOWS):
        payers_deposits = Payment.objects.filter(payer_fingerprint=payer).values("deposit_id")
        branches.append(_AmongArray("pk", Subquery(payers_deposits.order_by())))
    paid = Deposit.objects.filter(
        reduce(operator.or_, branches), status__in=PAID, created_at__gte=min(starts.values())
    ).exclude(pk=deposit.pk)
    counts = paid.aggregate(
        **{
            f"rule_{rule.pk}": _window_count(rule, deposit, payer, starts[rule.pk])
            for rule in rules
        }
    )
    return {rule.pk: counts[f"rule_{rule.pk}"] for rule in rules}


def _may_fire(rule: Rule, deposit, payer: str) -> bool:
    """Whether the deposit has the party the rule is about (a depositor, a named payer)."""
    if rule.kind in NEEDS_DEPOSITOR and deposit.depositor_id is None:
        return False
    return not (rule.kind in NEEDS_PAYER and not payer)


def _fires(rule: Rule, deposit, payer: str, now: dt.datetime, counts: dict[int, int]) -> bool:
    if not _may_fire(rule, deposit, payer):
        return False
    if rule.kind in WINDOW_KINDS:
        if rule.count is None:
            return False
        # This deposit is one more of what the rule counts; a deposit from no depositor adds
        # no depositor to a source's count.
        this_one = 0 if rule.kind == Kind.DEPOSITORS_FROM_SOURCE and not deposit.depositor_id else 1
        return counts[rule.pk] + this_one > rule.count
    if rule.kind == Kind.MONITORED_DEPOSITOR:
        return deposit.depositor_id is not None and rule.depositor_id == deposit.depositor_id
    if rule.kind == Kind.MONITORED_INMATE:
        return rule.inmate_id == deposit.inmate_id
    if rule.kind == Kind.MONITORED_SOURCE:
        return bool(rule.payer_fingerprint) and rule.payer_fingerprint == payer
    if rule.kind == Kind.AMOUNT_AT_LEAST:
        return rule.amount_fen is not None and deposit.amount_fen >= rule.amount_fen
    if rule.kind == Kind.NOT_WHOLE_YUAN:
        return deposit.amount_fen % 100 != 0
    if rule.kind == Kind.NEAR_MONTHLY_CAP:
        if rule.period_cap_fen is None or rule.percent is None:
            return False
        left_after_fen = rule.period_cap_fen - rule.period_received_fen - deposit.amount_fen
        return left_after_fen * 100 <= rule.period_cap_fen * rule.percent
    if rule.kind == Kind.NEW_DEPOSITOR:
        if rule.depositor_joined is None or rule.days is None:
            return False
        return now - rule.depositor_joined < dt.timedelta(days=rule.days)
    return False


def _not_skipped(fired: list[Rule], deposit, payer_fingerprint: str) -> list[Rule]:
    """The fired rules no active auto-accepted pair of this deposit skips: the depositor's pair
    with the inmate and the payment source's, each skipping the kinds it names (every kind if
    it names none). One indexed statement, sent only when a rule fired."""
    pair = Q()
    if deposit.depositor_id is not None:
        pair |= Q(depositor_id=deposit.depositor_id)
    if payer_fingerprint:
        pair |= Q(payer_fingerprint=payer_fingerprint)
    pairs = list(
        AutoAccept.objects.filter(pair, inmate_id=deposit.inmate_id, is_active=True).only(
            "skipped_kinds"
        )
    )
    return [rule for rule in fired if not any(each.skips(rule.kind) for each in pairs)]


class RuleScreener:
    """Registered with ``payments.screening`` by ``MonitoringConfig.ready``."""

    def fired(self, *, deposit, now: dt.datetime, payer_fingerprint: str = "") -> list[Rule]:
        rules = _active_rules(deposit)
        if not rules:
            return []
        payer = payer_fingerprint
        counted = [
            rule
            for rule in rules
            if rule.kind in WINDOW_KINDS
            and rule.count is not None
            and _may_fire(rule, deposit, payer)
        ]
        counts = _window_counts(counted, deposit, payer, now, deposit.facility.timezone)
        fired = [rule for rule in rules if _fires(rule, deposit, payer, now, counts)]
        if fired and (deposit.depositor_id is not None or payer_fingerprint):
            fired = _not_skipped(fired, deposit, payer_fingerprint)
        return fired

    def record_hold(self, *, deposit, fired: list[Rule], now: dt.datetime) -> None:
        hold, created = Hold.objects.get_or_create(
            deposit_id=deposit.pk,
            defaults={
                "facility_id": deposit.facility_id,
                "inmate_id": deposit.inmate_id,
                "depositor_id": deposit.depositor_id,
                "amount_fen": deposit.amount_fen,
                "created_at": now,
            },
        )
        if created:
            wanted = Q()
            for rule in fired:
                wanted |= Q(rule_id=rule.pk, version=rule.version)
            hold.fired.set(RuleVersion.objects.filter(wanted))


def depositor_history(*, depositor_id, inmate_id, facility_ids) -> dict:
    """What a reviewer sees of a depositor: deposits with this inmate and with others (count,
    total) and earlier decisions on their holds, within the reviewer's facilities."""
    paid = Deposit.objects.filter(
        depositor_id=depositor_id, status__in=PAID, facility_id__in=facility_ids
    )
    with_inmate = paid.filter(inmate_id=inmate_id).aggregate(n=Count("id"), total=Sum("amount_fen"))
    with_others = paid.exclude(inmate_id=inmate_id).aggregate(
        n=Count("id"), total=Sum("amount_fen"), inmates=Count("inmate_id", distinct=True)
    )
    decisions = (
        Hold.objects.filter(depositor_id=depositor_id, facility_id__in=facility_ids)
        .exclude(state=Hold.State.PENDING)
        .values("state")
        .annotate(n=Count("id"))
    )
    return {
        "with_inmate": with_inmate,
        "with_others": with_others,
        "decisions": {row["state"]: row["n"] for row in decisions},
    }
