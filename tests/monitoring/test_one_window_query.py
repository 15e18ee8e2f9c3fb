"""Every window rule of a facility is counted by ONE aggregate (a filtered count per rule):
the screening sends the rule look-up and that query, whatever the number of rules, and each
rule still fires at its threshold and not one below while all the others are counted beside
it in the same statement."""

import datetime as dt
import uuid

import pytest

from ledger import services as ledger
from ledger.models import Deposit, MonthlyPeriod
from monitoring.models import Rule
from monitoring.screening import RuleScreener
from payments import payers
from payments.models import Payment
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import SHANGHAI, key
from tests.payments.helpers import depositor

from .helpers import rule_at

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 10, 10, tzinfo=SHANGHAI)
NEVER = 10**6
Kind = Rule.Kind
WINDOW_KINDS = (
    Kind.DEPOSITS_FROM_DEPOSITOR,
    Kind.DEPOSITORS_TO_INMATE,
    Kind.INMATES_FROM_DEPOSITOR,
    Kind.DEPOSITS_FROM_SOURCE,
    Kind.SOURCES_TO_INMATE,
    Kind.INMATES_FROM_SOURCE,
    Kind.DEPOSITORS_FROM_SOURCE,
)
# The rules whose count grows with one payer's deposits: the screened deposit shares it.
SHARED_SOURCE_KINDS = (
    Kind.DEPOSITS_FROM_SOURCE,
    Kind.INMATES_FROM_SOURCE,
    Kind.DEPOSITORS_FROM_SOURCE,
)


def reserved(inmate, family, *, now=NOW) -> Deposit:
    deposit = ledger.reserve_deposit(
        inmate_id=inmate.pk,
        amount_fen=100,
        idempotency_key=key(),
        idempotency_scope=f"depositor:{family.pk}",
        depositor_id=family.pk,
        now=now,
    )
    return Deposit.objects.select_related("facility").get(pk=deposit.pk)


def credited(inmate, family, payer: str, *, now=NOW) -> Deposit:
    """A deposit paid from ``payer`` (a payer id at the sandbox) and credited."""
    deposit = reserved(inmate, family, now=now)
    Payment.objects.create(
        deposit=deposit,
        provider="sandbox",
        provider_reference=uuid.uuid4().hex,
        amount_fen=100,
        currency="CNY",
        status=Payment.Status.SETTLED,
        created_at=now,
        settled_at=now,
        payer_fingerprint=payers.fingerprint("sandbox", payer),
    )
    return ledger.credit_deposit(deposit_id=deposit.pk, now=now)


def fired(deposit, payer: str) -> list:
    fingerprint = payers.fingerprint("sandbox", payer)
    screened = RuleScreener().fired(deposit=deposit, payer_fingerprint=fingerprint, now=NOW)
    return [rule.kind for rule in screened]


def ten_rules(facility, *, counting=None, count=NEVER, days=30):
    """The seven window rules (``counting`` with ``count``, the others out of reach) and three
    that read a row each: the month, the depositor's sign-up, a watched source."""
    for kind in WINDOW_KINDS:
        rule_at(facility, kind, count=count if kind == counting else NEVER, days=days)
    rule_at(facility, Kind.NEAR_MONTHLY_CAP, percent=1)
    rule_at(facility, Kind.NEW_DEPOSITOR, days=1)
    rule_at(facility, Kind.MONITORED_SOURCE, payer_fingerprint=payers.fingerprint("sandbox", "x"))


def test_ten_rules_are_screened_in_two_statements_one_aggregate(django_assert_num_queries):
    facility = FacilityFactory()
    ten_rules(facility)
    inmate, family = InmateFactory(facility=facility), depositor()
    family.date_joined = NOW - dt.timedelta(days=30)
    family.save()
    credited(inmate, family, "card", now=NOW - dt.timedelta(days=2))
    deposit = reserved(inmate, family)
    with django_assert_num_queries(2) as captured:
        assert fired(deposit, "card") == []
    look_up, counts = (query["sql"] for query in captured)
    assert 'FROM "monitoring_rule"' in look_up
    # One filtered count per window rule, over the deposit table once.
    assert counts.count("FILTER (WHERE") == len(WINDOW_KINDS)
    assert counts.count('FROM "ledger_deposit"') == 1


def test_rules_that_read_nothing_cost_no_second_statement(django_assert_num_queries):
    facility = FacilityFactory()
    rule_at(facility, Kind.NOT_WHOLE_YUAN)
    rule_at(facility, Kind.NEAR_MONTHLY_CAP, percent=1)
    rule_at(facility, Kind.NEW_DEPOSITOR, days=1)
    family = depositor()
    family.date_joined = NOW - dt.timedelta(days=2)
    family.save()
    deposit = reserved(InmateFactory(facility=facility), family)
    # The month and the sign-up time come back with the rules.
    with django_assert_num_queries(1):
        assert fired(deposit, "card") == []


def test_the_look_up_gives_the_rules_as_the_orm_reads_them():
    """The rules are built from the look-up's rows, not read by the ORM: each field has the
    value and type the ORM gives it (a datetime aware, a flag a bool, on any backend), and
    the month's figures and the sign-up time come with the rules that read them."""
    facility = FacilityFactory()
    inmate, family = InmateFactory(facility=facility), depositor()
    family.date_joined = NOW - dt.timedelta(days=2)
    family.save()
    card = payers.fingerprint("sandbox", "card")
    # Rules that all fire, their fields set unlike one another's, so a column read into the
    # wrong field shows.
    rule_at(facility, Kind.MONITORED_DEPOSITOR, depositor=family, note="watched")
    rule_at(facility, Kind.MONITORED_INMATE, inmate=inmate)
    rule_at(facility, Kind.MONITORED_SOURCE, payer_fingerprint=card, payer_label="**** 1234")
    rule_at(facility, Kind.AMOUNT_AT_LEAST, amount_fen=1)
    rule_at(facility, Kind.DEPOSITS_FROM_DEPOSITOR, count=0, days=3)
    rule_at(facility, Kind.NEAR_MONTHLY_CAP, percent=100)
    rule_at(facility, Kind.NEW_DEPOSITOR, days=7)
    rule_at(facility, Kind.NOT_WHOLE_YUAN, is_active=False)
    deposit = reserved(inmate, family)
    period = MonthlyPeriod.objects.get(pk=deposit.period_id)

    screened = RuleScreener().fired(deposit=deposit, payer_fingerprint=card, now=NOW)

    stored = Rule.objects.filter(facility=facility, is_active=True).in_bulk()
    assert sorted(rule.pk for rule in screened) == sorted(stored)
    fields = [field.attname for field in Rule._meta.concrete_fields]
    for rule in screened:
        orm = stored[rule.pk]
        assert [(getattr(rule, name), type(getattr(rule, name))) for name in fields] == [
            (getattr(orm, name), type(getattr(orm, name))) for name in fields
        ]
        assert rule.updated_at.tzinfo is not None
        assert (rule._state.adding, rule._state.db) == (False, orm._state.db)
        near_cap = rule.kind == Kind.NEAR_MONTHLY_CAP
        assert rule.period_cap_fen == (period.cap_fen if near_cap else None)
        assert rule.period_received_fen == (period.received_fen if near_cap else None)
        joined = rule.depositor_joined
        assert joined == (family.date_joined if rule.kind == Kind.NEW_DEPOSITOR else None)
        assert joined is None or joined.tzinfo is not None


def one_more(kind, facility, inmate, family, number: int, *, now) -> str:
    """Credit an earlier deposit that adds one to what ``kind`` counts for a deposit from
    ``family`` to ``inmate`` (its ``number``-th depositor, source or inmate); returns the payer
    the screened deposit is paid from."""
    other_inmate = InmateFactory(facility=facility)
    earlier = {
        Kind.DEPOSITS_FROM_DEPOSITOR: (inmate, family, "card"),
        Kind.DEPOSITORS_TO_INMATE: (inmate, depositor(), f"card-{number}"),
        Kind.INMATES_FROM_DEPOSITOR: (other_inmate, family, "card"),
        Kind.DEPOSITS_FROM_SOURCE: (other_inmate, depositor(), "shared"),
        Kind.SOURCES_TO_INMATE: (inmate, family, f"card-{number}"),
        Kind.INMATES_FROM_SOURCE: (other_inmate, depositor(), "shared"),
        Kind.DEPOSITORS_FROM_SOURCE: (inmate, depositor(), "shared"),
    }[kind]
    credited(*earlier, now=now)
    return "shared" if kind in SHARED_SOURCE_KINDS else "card"


def party(facility):
    family = depositor()
    family.date_joined = NOW - dt.timedelta(days=30)  # out of the new-depositor rule's reach
    family.save()
    return InmateFactory(facility=facility), family


@pytest.mark.parametrize("kind", WINDOW_KINDS)
def test_each_window_rule_fires_at_its_threshold_beside_the_others(kind):
    facility = FacilityFactory()
    ten_rules(facility, counting=kind, count=2, days=2)
    inmate, family = party(facility)
    yesterday_midnight = dt.datetime(2026, 6, 9, 0, 0, tzinfo=SHANGHAI)  # the window's first
    payer = one_more(kind, facility, inmate, family, 1, now=yesterday_midnight)
    assert fired(reserved(inmate, family), payer) == []  # the 2nd: not more than 2
    one_more(kind, facility, inmate, family, 2, now=NOW - dt.timedelta(hours=1))
    assert fired(reserved(inmate, family), payer) == [kind]  # the 3rd


@pytest.mark.parametrize("kind", WINDOW_KINDS)
def test_a_window_rule_counts_nothing_before_its_first_local_day(kind):
    """Two days back from 10:00 on the 10th is 00:00 on the 9th in Shanghai: deposits a minute
    before it are outside the window, though other rules count further back in the query."""
    facility = FacilityFactory()
    ten_rules(facility, counting=kind, count=2, days=2)
    inmate, family = party(facility)
    before = dt.datetime(2026, 6, 8, 23, 59, tzinfo=SHANGHAI)
    payer = one_more(kind, facility, inmate, family, 1, now=before)
    one_more(kind, facility, inmate, family, 2, now=before)
    assert fired(reserved(inmate, family), payer) == []
