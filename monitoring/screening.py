"""Which of a facility's rules fire on a paid deposit (``payments.screening`` asks).

With no active rule at the deposit's facility this costs one indexed query
(``rule_facility_active``); each rule that counts over a window adds one aggregate over the
deposit table's inmate or depositor index, or the payment table's payer index
(``payment_payer``), and only when such a rule is active. A window of D days is today and the
D - 1 days before it, in the facility's own calendar.

The payment source is the payer the provider named, as its keyed hash
(``payments.payers``): a deposit whose provider named no payer fires no payment-source rule.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, Sum

from facilities.models import local_date
from ledger.models import Deposit, MonthlyPeriod
from payments.models import Payment

from .models import AutoAccept, Hold, Rule, RuleVersion

PAID = (Deposit.Status.HELD, Deposit.Status.CREDITED)


def window_start(now: dt.datetime, timezone_name: str, days: int) -> dt.datetime:
    """Local midnight starting a window of ``days`` whole facility-local days ending today."""
    first_day = local_date(now, timezone_name) - dt.timedelta(days=max(days, 1) - 1)
    return dt.datetime.combine(first_day, dt.time.min, tzinfo=ZoneInfo(timezone_name))


def _paid_in_window(deposit, rule, now, timezone_name):
    return Deposit.objects.filter(
        status__in=PAID, created_at__gte=window_start(now, timezone_name, rule.days or 1)
    ).exclude(pk=deposit.pk)


def _source_paid_in_window(deposit, rule, now, timezone_name):
    """Paid payments in the rule's window, other than this deposit's."""
    return Payment.objects.filter(
        deposit__status__in=PAID,
        deposit__created_at__gte=window_start(now, timezone_name, rule.days or 1),
    ).exclude(deposit_id=deposit.pk)


SOURCE_KINDS = (
    Rule.Kind.MONITORED_SOURCE,
    Rule.Kind.DEPOSITS_FROM_SOURCE,
    Rule.Kind.SOURCES_TO_INMATE,
    Rule.Kind.INMATES_FROM_SOURCE,
    Rule.Kind.DEPOSITORS_FROM_SOURCE,
)


def _source_fires(rule: Rule, deposit, payer: str, now: dt.datetime, timezone_name: str) -> bool:
    """A payment-source rule on a deposit whose payer's keyed hash is ``payer``."""
    kind = Rule.Kind
    if not payer:
        return False  # the provider named no payer: nothing to match
    if rule.kind == kind.MONITORED_SOURCE:
        return bool(rule.payer_fingerprint) and rule.payer_fingerprint == payer
    if rule.count is None:
        return False
    paid = _source_paid_in_window(deposit, rule, now, timezone_name)
    if rule.kind == kind.DEPOSITS_FROM_SOURCE:
        return paid.filter(payer_fingerprint=payer).count() + 1 > rule.count
    if rule.kind == kind.SOURCES_TO_INMATE:
        others = paid.filter(deposit__inmate_id=deposit.inmate_id).exclude(payer_fingerprint="")
        others = others.exclude(payer_fingerprint=payer)
        return others.aggregate(n=Count("payer_fingerprint", distinct=True))["n"] + 1 > rule.count
    if rule.kind == kind.INMATES_FROM_SOURCE:
        others = paid.filter(payer_fingerprint=payer).exclude(deposit__inmate_id=deposit.inmate_id)
        return others.aggregate(n=Count("deposit__inmate_id", distinct=True))["n"] + 1 > rule.count
    if rule.kind == kind.DEPOSITORS_FROM_SOURCE:
        others = paid.filter(payer_fingerprint=payer, deposit__depositor_id__isnull=False)
        if deposit.depositor_id is not None:
            others = others.exclude(deposit__depositor_id=deposit.depositor_id)
        this_one = 1 if deposit.depositor_id is not None else 0
        n = others.aggregate(n=Count("deposit__depositor_id", distinct=True))["n"]
        return n + this_one > rule.count
    return False


def _fires(rule: Rule, deposit, payer: str, now: dt.datetime, timezone_name: str) -> bool:
    kind = Rule.Kind
    if rule.kind in SOURCE_KINDS:
        return _source_fires(rule, deposit, payer, now, timezone_name)
    if rule.kind == kind.MONITORED_DEPOSITOR:
        return deposit.depositor_id is not None and rule.depositor_id == deposit.depositor_id
    if rule.kind == kind.MONITORED_INMATE:
        return rule.inmate_id == deposit.inmate_id
    if rule.kind == kind.AMOUNT_AT_LEAST:
        return rule.amount_fen is not None and deposit.amount_fen >= rule.amount_fen
    if rule.kind == kind.NOT_WHOLE_YUAN:
        return deposit.amount_fen % 100 != 0
    if rule.kind == kind.NEAR_MONTHLY_CAP:
        period = MonthlyPeriod.objects.filter(pk=deposit.period_id).values(
            "received_fen", "cap_fen"
        )
        period = period.first()
        if period is None or rule.percent is None:
            return False
        left_after_fen = period["cap_fen"] - period["received_fen"] - deposit.amount_fen
        return left_after_fen * 100 <= period["cap_fen"] * rule.percent
    if deposit.depositor_id is None:
        return False  # the window rules below count what one depositor does
    if rule.kind == kind.NEW_DEPOSITOR:
        joined = deposit.depositor.date_joined
        return rule.days is not None and now - joined < dt.timedelta(days=rule.days)
    if rule.count is None:
        return False
    paid = _paid_in_window(deposit, rule, now, timezone_name)
    if rule.kind == kind.DEPOSITS_FROM_DEPOSITOR:
        return paid.filter(depositor_id=deposit.depositor_id).count() + 1 > rule.count
    if rule.kind == kind.DEPOSITORS_TO_INMATE:
        others = paid.filter(inmate_id=deposit.inmate_id).exclude(depositor_id=deposit.depositor_id)
        return others.aggregate(n=Count("depositor_id", distinct=True))["n"] + 1 > rule.count
    if rule.kind == kind.INMATES_FROM_DEPOSITOR:
        others = paid.filter(depositor_id=deposit.depositor_id).exclude(inmate_id=deposit.inmate_id)
        return others.aggregate(n=Count("inmate_id", distinct=True))["n"] + 1 > rule.count
    return False


class RuleScreener:
    """Registered with ``payments.screening`` by ``MonitoringConfig.ready``."""

    def fired(self, *, deposit, now: dt.datetime, payer_fingerprint: str = "") -> list[Rule]:
        rules = list(Rule.objects.filter(facility_id=deposit.facility_id, is_active=True))
        if not rules:
            return []
        timezone_name = deposit.facility.timezone
        fired = [
            rule for rule in rules if _fires(rule, deposit, payer_fingerprint, now, timezone_name)
        ]
        if fired and (deposit.depositor_id is not None or payer_fingerprint):
            pair = Q()
            if deposit.depositor_id is not None:
                pair |= Q(depositor_id=deposit.depositor_id)
            if payer_fingerprint:
                pair |= Q(payer_fingerprint=payer_fingerprint)
            skipped = AutoAccept.objects.filter(
                pair, inmate_id=deposit.inmate_id, is_active=True
            ).exists()
            if skipped:
                return []
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
