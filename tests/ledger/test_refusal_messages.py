"""A refusal with a figure in it reads as a sentence in the reader's language, with the amount
in yuan, and the refused deposit reserves nothing."""

import pytest
from django.utils import translation

from commissary import errors
from ledger import services
from ledger.models import Deposit
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit, key

pytestmark = pytest.mark.django_db


def reserve(inmate, amount_fen):
    return services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key(),
    )


def test_a_deposit_over_the_single_limit_is_refused_in_yuan_in_chinese_and_english():
    inmate = InmateFactory(facility=FacilityFactory(max_deposit_fen=50_000))
    with translation.override("zh-hans"), pytest.raises(errors.DepositOverSingleLimit) as chinese:
        reserve(inmate, 50_001)
    assert chinese.value.message == "本监所单笔汇款最多为 ¥500.00。"
    with translation.override("en"), pytest.raises(errors.DepositOverSingleLimit) as english:
        reserve(inmate, 50_001)
    assert english.value.message == "One deposit may be at most ¥500.00 at this facility."
    assert not Deposit.objects.filter(inmate=inmate).exists()


def test_a_deposit_over_the_balance_cap_names_the_room_left_in_yuan():
    inmate = InmateFactory(facility=FacilityFactory(balance_cap_fen=100_000))
    deposit(inmate, 98_766)
    with translation.override("zh-hans"), pytest.raises(errors.BalanceCapExceeded) as refused:
        reserve(inmate, 2_000)
    assert refused.value.message == "该在押人员最多还能收到 ¥12.34，之后将达到余额上限。"
    assert Deposit.objects.filter(inmate=inmate).count() == 1


def test_the_monthly_deposit_count_refusal_reads_in_chinese():
    inmate = InmateFactory(facility=FacilityFactory(max_deposits_per_month=1))
    deposit(inmate, 100)
    with (
        translation.override("zh-hans"),
        pytest.raises(errors.MonthlyDepositCountExceeded) as refused,
    ):
        reserve(inmate, 100)
    assert refused.value.message == "该在押人员每月最多可收到 1 笔汇款。"
