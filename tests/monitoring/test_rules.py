"""Each rule fires at its threshold and not one below, counting whole facility-local days
(a window of D days is today and the D - 1 days before, in Shanghai here)."""

import datetime as dt

import pytest

from ledger import services as ledger
from ledger.models import Deposit
from monitoring.models import Rule
from monitoring.screening import RuleScreener, window_start
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import SHANGHAI, key
from tests.payments.helpers import depositor

from .helpers import rule_at

pytestmark = pytest.mark.django_db

# 10:00 on 10 June in Shanghai.
NOW = dt.datetime(2026, 6, 10, 10, tzinfo=SHANGHAI)


@pytest.fixture
def facility():
    return FacilityFactory()


def reserved(inmate, amount_fen, *, family=None, now=NOW) -> Deposit:
    deposit = ledger.reserve_deposit(
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key(),
        idempotency_scope=f"depositor:{family.pk if family else 1}",
        depositor_id=family.pk if family else None,
        now=now,
    )
    return Deposit.objects.select_related("facility", "depositor").get(pk=deposit.pk)


def credited(inmate, amount_fen, *, family=None, now=NOW) -> Deposit:
    deposit = reserved(inmate, amount_fen, family=family, now=now)
    return ledger.credit_deposit(deposit_id=deposit.pk, now=now)


def fired(deposit, now=NOW) -> list:
    return [rule.kind for rule in RuleScreener().fired(deposit=deposit, now=now)]


def test_a_window_of_d_days_starts_at_local_midnight_d_minus_one_days_ago():
    assert window_start(NOW, "Asia/Shanghai", 1) == dt.datetime(2026, 6, 10, tzinfo=SHANGHAI)
    assert window_start(NOW, "Asia/Shanghai", 7) == dt.datetime(2026, 6, 4, tzinfo=SHANGHAI)
    # 00:30 on the 11th in Shanghai is still the 10th in UTC: the window is Shanghai's.
    late = dt.datetime(2026, 6, 10, 16, 30, tzinfo=dt.UTC)
    assert window_start(late, "Asia/Shanghai", 1) == dt.datetime(2026, 6, 11, tzinfo=SHANGHAI)


def test_no_active_rule_costs_one_query_and_fires_nothing(facility, django_assert_num_queries):
    deposit = reserved(InmateFactory(facility=facility), 10_000)
    with django_assert_num_queries(1):
        assert fired(deposit) == []


def test_amount_at_least_fires_at_the_threshold_and_not_one_fen_below(facility):
    rule_at(facility, Rule.Kind.AMOUNT_AT_LEAST, amount_fen=50_000)
    inmate = InmateFactory(facility=facility)
    assert fired(reserved(inmate, 50_000)) == [Rule.Kind.AMOUNT_AT_LEAST]
    assert fired(reserved(inmate, 49_999)) == []


def test_an_amount_not_in_whole_yuan(facility):
    rule_at(facility, Rule.Kind.NOT_WHOLE_YUAN)
    inmate = InmateFactory(facility=facility)
    assert fired(reserved(inmate, 10_001)) == [Rule.Kind.NOT_WHOLE_YUAN]
    assert fired(reserved(inmate, 10_000)) == []


def test_monitored_depositor_and_inmate(facility):
    watched, other = depositor(), depositor()
    inmate, other_inmate = InmateFactory(facility=facility), InmateFactory(facility=facility)
    rule_at(facility, Rule.Kind.MONITORED_DEPOSITOR, depositor=watched)
    rule_at(facility, Rule.Kind.MONITORED_INMATE, inmate=inmate)
    assert fired(reserved(other_inmate, 100, family=watched)) == [Rule.Kind.MONITORED_DEPOSITOR]
    assert fired(reserved(inmate, 100, family=other)) == [Rule.Kind.MONITORED_INMATE]
    assert fired(reserved(other_inmate, 100, family=other)) == []


def test_a_switched_off_rule_fires_nothing(facility):
    rule = rule_at(facility, Rule.Kind.NOT_WHOLE_YUAN)
    rule.is_active = False
    rule.save()
    assert fired(reserved(InmateFactory(facility=facility), 101)) == []


def test_more_than_n_deposits_from_one_depositor_in_d_days(facility):
    rule_at(facility, Rule.Kind.DEPOSITS_FROM_DEPOSITOR, count=3, days=2)
    family = depositor()
    inmate = InmateFactory(facility=facility)
    # Yesterday 00:00 local is inside a two-day window; the day before is not.
    credited(inmate, 100, family=family, now=dt.datetime(2026, 6, 8, 23, 59, tzinfo=SHANGHAI))
    credited(inmate, 100, family=family, now=dt.datetime(2026, 6, 9, 0, 0, tzinfo=SHANGHAI))
    credited(inmate, 100, family=family, now=dt.datetime(2026, 6, 10, 9, 0, tzinfo=SHANGHAI))
    third = reserved(inmate, 100, family=family)  # the third in the window: not more than 3
    assert fired(third) == []
    ledger.credit_deposit(deposit_id=third.pk, now=NOW)
    assert fired(reserved(inmate, 100, family=family)) == [Rule.Kind.DEPOSITS_FROM_DEPOSITOR]


def test_more_than_n_depositors_to_one_inmate_in_d_days(facility):
    rule_at(facility, Rule.Kind.DEPOSITORS_TO_INMATE, count=2, days=1)
    inmate = InmateFactory(facility=facility)
    first, second, third = depositor(), depositor(), depositor()
    credited(inmate, 100, family=first)
    credited(inmate, 100, family=first)
    assert fired(reserved(inmate, 100, family=second)) == []  # two depositors: not more than 2
    credited(inmate, 100, family=second)
    assert fired(reserved(inmate, 100, family=third)) == [Rule.Kind.DEPOSITORS_TO_INMATE]


def test_one_depositor_to_more_than_n_inmates_in_d_days(facility):
    rule_at(facility, Rule.Kind.INMATES_FROM_DEPOSITOR, count=2, days=1)
    family = depositor()
    a, b, c = (InmateFactory(facility=facility) for _ in range(3))
    credited(a, 100, family=family)
    assert fired(reserved(b, 100, family=family)) == []
    credited(b, 100, family=family)
    assert fired(reserved(c, 100, family=family)) == [Rule.Kind.INMATES_FROM_DEPOSITOR]


def test_a_deposit_bringing_the_month_within_x_percent_of_the_cap(facility):
    rule_at(facility, Rule.Kind.NEAR_MONTHLY_CAP, percent=10)  # within 100 of 1,000 yuan
    inmate = InmateFactory(facility=facility)
    credited(inmate, 80_000)
    assert fired(reserved(inmate, 9_999)) == []  # 100.01 yuan left after it
    assert fired(reserved(inmate, 10_000)) == [Rule.Kind.NEAR_MONTHLY_CAP]  # 100.00 left


def test_a_depositor_younger_than_d_days(facility):
    rule_at(facility, Rule.Kind.NEW_DEPOSITOR, days=7)
    inmate = InmateFactory(facility=facility)
    family = depositor()
    family.date_joined = NOW - dt.timedelta(days=7)
    family.save()
    assert fired(reserved(inmate, 100, family=family)) == []
    family.date_joined = NOW - dt.timedelta(days=7) + dt.timedelta(seconds=1)
    family.save()
    assert fired(reserved(inmate, 100, family=family)) == [Rule.Kind.NEW_DEPOSITOR]


def test_another_facilitys_rules_do_not_fire(facility):
    rule_at(FacilityFactory(), Rule.Kind.NOT_WHOLE_YUAN)
    assert fired(reserved(InmateFactory(facility=facility), 101)) == []
