"""Every window rule of a facility is counted by ONE aggregate (a filtered count per rule):
the screening sends the rule look-up and that query, whatever the number of rules, and each
rule still fires at its threshold and not one below while all the others are counted beside
it in the same statement."""

import datetime as dt
import uuid

import pytest

from ledger import services as ledger
from ledger.models import Deposit
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
