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
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Q, Sum

from facilities.models import local_date
from ledger.models import Deposit, MonthlyPeriod

from .models import AutoAccept, Hold, Rule, RuleVersion

PAID = (Deposit.Status.HELD.value, Deposit.Status.CREDITED.value)
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


# The two statements, written out: the ORM took 1.3 ms of client CPU to compile the rule look-up
# and about 3 ms for ten rules' aggregate, on every paid callback, against 0.1 ms to send the
# same text (``python bench/ledger.py``, "client CPU per operation"; docs/benchmarks.md). The
# text is what the ORM sent, so the plans are unchanged; ``bench/ledger.py``'s raw baseline keeps
# its own copy and fails when the two differ. A rule's columns are its fields in the model's
# order, as ``_instances`` reads them.
RULE_COLUMNS = (
    '"monitoring_rule"."id", "monitoring_rule"."facility_id", "monitoring_rule"."kind", '
    '"monitoring_rule"."depositor_id", "monitoring_rule"."inmate_id", '
    '"monitoring_rule"."payer_fingerprint", "monitoring_rule"."payer_label", '
    '"monitoring_rule"."amount_fen", "monitoring_rule"."count", "monitoring_rule"."days", '
    '"monitoring_rule"."percent", "monitoring_rule"."note", "monitoring_rule"."is_active", '
    '"monitoring_rule"."version", "monitoring_rule"."updated_by_id", '
    '"monitoring_rule"."updated_at"'
)
_WHEN_KIND = 'CASE WHEN "monitoring_rule"."kind" = %s THEN (SELECT U0.'
RULES_SQL = (
    f"SELECT {RULE_COLUMNS}, "  # noqa: S608 - constants
    f'{_WHEN_KIND}"cap_fen" AS "cap_fen" FROM "ledger_monthlyperiod" U0 WHERE U0."id" = %s) '
    'ELSE NULL END AS "period_cap_fen", '
    f'{_WHEN_KIND}"received_fen" AS "received_fen" FROM "ledger_monthlyperiod" U0 '
    'WHERE U0."id" = %s) ELSE NULL END AS "period_received_fen", '
    f'{_WHEN_KIND}"date_joined" AS "date_joined" FROM "accounts_user" U0 WHERE U0."id" = %s) '
    'ELSE NULL END AS "depositor_joined" FROM "monitoring_rule" '
    'WHERE ("monitoring_rule"."facility_id" = %s AND "monitoring_rule"."is_active")'
)
_SINCE = '"ledger_deposit"."created_at" >= %s'
_PAYER = '"payments_payment"."payer_fingerprint"'
_DEPOSITOR = '"ledger_deposit"."depositor_id"'
_INMATE = '"ledger_deposit"."inmate_id"'
# Each window rule's filtered count (``{alias}`` is ``rule_<id>``), and the parameters it binds
# after its window start, from (deposit, payer).
WINDOW_COUNTS = {
    Kind.DEPOSITS_FROM_DEPOSITOR: (
        f'COUNT("ledger_deposit"."id") FILTER (WHERE ({_SINCE} AND {_DEPOSITOR} = %s)) '
        'AS "{alias}"',
        lambda deposit, payer: [deposit.depositor_id],
    ),
    Kind.INMATES_FROM_DEPOSITOR: (
        f"COUNT(DISTINCT {_INMATE}) FILTER (WHERE ({_SINCE} AND {_DEPOSITOR} = %s AND NOT "
        f'({_INMATE} = %s))) AS "{{alias}}"',
        lambda deposit, payer: [deposit.depositor_id, deposit.inmate_id],
    ),
    Kind.DEPOSITORS_TO_INMATE: (
        f"COUNT(DISTINCT {_DEPOSITOR}) FILTER (WHERE ({_SINCE} AND {_INMATE} = %s AND NOT "
        f'({_DEPOSITOR} = %s AND {_DEPOSITOR} IS NOT NULL))) AS "{{alias}}"',
        lambda deposit, payer: [deposit.inmate_id, deposit.depositor_id],
    ),
    Kind.SOURCES_TO_INMATE: (
        f"COUNT(DISTINCT {_PAYER}) FILTER (WHERE ({_SINCE} AND {_INMATE} = %s "
        f'AND {_PAYER} <> %s AND {_PAYER} <> %s)) AS "{{alias}}"',
        lambda deposit, payer: [deposit.inmate_id, "", payer],
    ),
    Kind.DEPOSITS_FROM_SOURCE: (
        f'COUNT("ledger_deposit"."id") FILTER (WHERE ({_SINCE} AND {_PAYER} = %s)) AS "{{alias}}"',
        lambda deposit, payer: [payer],
    ),
    Kind.INMATES_FROM_SOURCE: (
        f"COUNT(DISTINCT {_INMATE}) FILTER (WHERE ({_SINCE} AND {_PAYER} = %s "
        f'AND NOT ({_INMATE} = %s))) AS "{{alias}}"',
        lambda deposit, payer: [payer, deposit.inmate_id],
    ),
    # A source's other depositors; a deposit from no depositor compares with none.
    Kind.DEPOSITORS_FROM_SOURCE: (
        f"COUNT(DISTINCT {_DEPOSITOR}) FILTER (WHERE ({_SINCE} AND {_PAYER} = %s "
        f"AND {_DEPOSITOR} IS NOT NULL AND {_DEPOSITOR} IS DISTINCT FROM %s)) "
        'AS "{alias}"',
        lambda deposit, payer: [payer, deposit.depositor_id],
    ),
}
# The deposits the counts read, by the party whose deposits a rule counts: PostgreSQL ORs the
# three indexed branches in one bitmap scan. ``id = ANY(ARRAY(SELECT ...))``, unlike ``id IN
# (SELECT ...)`` (which PostgreSQL can only apply as a filter once OR-ed with the others), is an
# index condition on the primary key; SQLite has no arrays and takes the ``IN``.
PARTIES = (
    (DEPOSITOR_WINDOWS, f"{_DEPOSITOR} = %s", lambda deposit, payer: deposit.depositor_id),
    (INMATE_WINDOWS, f"{_INMATE} = %s", lambda deposit, payer: deposit.inmate_id),
    (SOURCE_WINDOWS, '"ledger_deposit"."id" = ANY(ARRAY({payers}))', lambda deposit, payer: payer),
)
PAYERS_DEPOSITS = (
    'SELECT U0."deposit_id" AS "deposit_id" FROM "payments_payment" U0 '
    'WHERE U0."payer_fingerprint" = %s'
)
WINDOW_SQL = (
    'SELECT {counts} FROM "ledger_deposit" '  # noqa: S608 - constants
    'LEFT OUTER JOIN "payments_payment" '
    'ON ("ledger_deposit"."id" = "payments_payment"."deposit_id") WHERE (({parties}) '
    f'AND {_SINCE} AND "ledger_deposit"."status" IN (%s, %s) '
    'AND NOT ("ledger_deposit"."id" = %s))'
)


def _active_rules(deposit) -> list[Rule]:
    """The facility's active rules, each near-cap rule with the month's figures and each
    new-depositor rule with the depositor's sign-up time."""
    near_cap, new_depositor = Kind.NEAR_MONTHLY_CAP.value, Kind.NEW_DEPOSITOR.value
    params = [near_cap, deposit.period_id, near_cap, deposit.period_id]
    params += [new_depositor, deposit.depositor_id, deposit.facility_id]
    with connection.cursor() as cursor:
        cursor.execute(RULES_SQL, params)
        rows = cursor.fetchall()
    if not rows:
        return []
    depositor = Rule._meta.get_field("depositor").related_model
    figures = {
        "period_cap_fen": MonthlyPeriod._meta.get_field("cap_fen"),
        "period_received_fen": MonthlyPeriod._meta.get_field("received_fen"),
        "depositor_joined": depositor._meta.get_field("date_joined"),
    }
    return _instances(cursor.db, Rule, rows, figures)


def _instances(db, model, rows, extra: dict) -> list:
    """``model``'s instances from rows of its concrete fields (in the model's order) and then
    one column for each of ``extra`` (an attribute's name: the field its value comes from),
    each value converted as the ORM's compiler converts that field's on ``db``'s backend
    (SQLite gives a datetime as text and a flag as an integer). ``Model.objects.raw`` works
    out the same per query from the cursor's column names, and for the rule look-up took about
    0.07 ms of client CPU more (``Rule.objects.raw``; it left the extra columns unconverted)."""
    own = model._meta.concrete_fields
    columns = [field.get_col(field.model._meta.db_table) for field in (*own, *extra.values())]
    converters = [
        (position, convert, column)
        for position, column in enumerate(columns)
        for convert in db.ops.get_db_converters(column) + column.get_db_converters(db)
    ]
    names = [field.attname for field in own]
    instances = []
    for row in rows:
        values = list(row)
        for position, convert, column in converters:
            values[position] = convert(values[position], column, db)
        instance = model.from_db(db.alias, names, values[: len(own)])
        for name, value in zip(extra, values[len(own) :], strict=True):
            setattr(instance, name, value)
        instances.append(instance)
    return instances


def _window_counts(
    rules: list[Rule], deposit, payer: str, now: dt.datetime, timezone_name: str
) -> dict[int, int]:
    """Every window rule's count in ONE aggregate (keyed by rule id); no query without one."""
    if not rules:
        return {}
    adapt = connection.ops.adapt_datetimefield_value
    starts = {rule.pk: window_start(now, timezone_name, rule.days or 1) for rule in rules}
    counts, params = [], []
    for rule in rules:
        count_sql, count_params = WINDOW_COUNTS[rule.kind]
        counts.append(count_sql.format(alias=f"rule_{rule.pk}"))
        params += [adapt(starts[rule.pk]), *count_params(deposit, payer)]
    kinds = {rule.kind for rule in rules}
    parties = [(sql, value) for wanted, sql, value in PARTIES if kinds & set(wanted)]
    parties_sql = " OR ".join(sql for sql, _value in parties)
    if connection.vendor != "postgresql":
        parties_sql = parties_sql.replace(" = ANY(ARRAY({payers}))", " IN ({payers})")
    parties_sql = parties_sql.replace("{payers}", PAYERS_DEPOSITS)
    params += [value(deposit, payer) for _sql, value in parties]
    params += [adapt(min(starts.values())), *PAID, deposit.pk]
    with connection.cursor() as cursor:
        cursor.execute(WINDOW_SQL.format(counts=", ".join(counts), parties=parties_sql), params)
        row = cursor.fetchone()
    return {rule.pk: row[index] or 0 for index, rule in enumerate(rules)}


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
