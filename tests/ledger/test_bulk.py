"""The ledger's bulk path (``ledger.bulk``), which the demo's large seed posts through: the rows
it writes are the services' rows (balances, periods, keys and request hashes), and legs that do
not balance are refused before any write."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.utils import timezone

from facilities.models import Inmate
from ledger import services
from ledger.bulk import (
    BulkRows,
    InmateMoney,
    LoadedDeposit,
    LoadedPurchase,
    SystemAccounts,
    load_inmate_money,
)
from ledger.models import Account, Deposit, Entry, MonthlyPeriod, Transaction
from ledger.reconciliation import run_checks
from tests.factories import FacilityFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _load(facility, money, now):
    with transaction.atomic(), connection.cursor() as cursor:
        load_inmate_money(
            BulkRows(cursor),
            facility=facility,
            provider="sandbox",
            system=SystemAccounts.of(facility, provider="sandbox"),
            inmates=money,
            now=now,
        )


def _bare_inmate(facility, number):
    return Inmate.objects.create(
        facility=facility,
        inmate_number=number,
        surname="Li",
        given_name="Na",
        admitted_at=timezone.now(),
    )


def test_loaded_money_is_what_the_services_write_and_reconciles_clean():
    facility = FacilityFactory(deposit_fee_fixed_fen=100)
    inmate = _bare_inmate(facility, "B000001")
    now = timezone.now()
    earlier = now - dt.timedelta(minutes=5)
    _load(
        facility,
        [
            InmateMoney(
                inmate_id=inmate.pk,
                deposits=[LoadedDeposit("load:1:deposit", 20_000, 100, earlier, earlier)],
                purchases=[LoadedPurchase("load:1:purchase", 3_000, "Soap", now)],
            )
        ],
        now,
    )
    spendable = Account.objects.get(inmate=inmate, kind=Account.Kind.SPENDABLE)
    assert spendable.balance_fen == 17_000
    assert Account.objects.get(inmate=inmate, kind=Account.Kind.HELD).balance_fen == 0
    assert MonthlyPeriod.objects.get(inmate=inmate).received_fen == 20_000
    deposit = Deposit.objects.get(inmate=inmate)
    assert (deposit.status, deposit.amount_fen, deposit.fee_fen) == ("credited", 20_000, 100)
    assert sorted(
        Entry.objects.filter(transaction__inmate=inmate).values_list("amount_fen", flat=True)
    ) == sorted([-20_100, 20_000, 100, -3_000, 3_000])
    assert run_checks() == []
    # The loaded purchase carries the request hash the services write a purchase with.
    loaded = Transaction.objects.get(
        idempotency_scope=services.SYSTEM_SCOPE, idempotency_key="load:1:purchase"
    )
    assert loaded.kind == Transaction.Kind.PURCHASE
    assert loaded.request_hash == services.purchase_request_hash(
        inmate_id=inmate.pk, amount_fen=3_000, memo="Soap"
    )
    assert Transaction.objects.filter(inmate=inmate).count() == 2


def test_spending_more_than_was_deposited_is_refused_and_writes_nothing():
    facility = FacilityFactory()
    inmate = _bare_inmate(facility, "B000002")
    now = timezone.now()
    with pytest.raises(ValueError, match="spends more"):
        _load(
            facility,
            [
                InmateMoney(
                    inmate_id=inmate.pk,
                    deposits=[LoadedDeposit("load:2:deposit", 1_000, 0, now, now)],
                    purchases=[LoadedPurchase("load:2:purchase", 1_001, "", now)],
                )
            ],
            now,
        )
    assert not Account.objects.filter(inmate=inmate).exists()
    assert not Transaction.objects.filter(inmate=inmate).exists()
