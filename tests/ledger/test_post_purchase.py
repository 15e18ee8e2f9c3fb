"""``post_purchase``: the purchase's step for a caller that holds the inmate's account lock
(``place_order``), and the ledger's only purchase. A closed or frozen account and too little
spendable money are refused before anything is written; otherwise one balanced purchase moves
the money from spendable to the facility's sales."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from commissary import errors
from ledger import services
from ledger.locks import lock_inmate_accounts
from ledger.models import Transaction
from ledger.selectors import inmate_balance
from tests.factories import InmateFactory

from .helpers import deposit, key, set_frozen


def _post(inmate, amount_fen: int) -> int:
    """The purchase's transaction id (``post_purchase`` returns the transaction it wrote)."""
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate.pk)
        return services.post_purchase(
            cursor,
            locked=locked,
            amount_fen=amount_fen,
            idempotency_scope="kiosk:1",
            idempotency_key=key("order"),
            request_hash="0" * 64,
            memo="Commissary order #1",
            now=timezone.now(),
        ).pk


@pytest.mark.django_db
def test_post_purchase_debits_spendable_into_sales_under_the_callers_lock(
    assert_ledger_consistent,
):
    inmate = InmateFactory()
    deposit(inmate, 5_000)
    transaction_id = _post(inmate, 1_200)
    purchase = Transaction.objects.get(pk=transaction_id)
    assert (purchase.kind, purchase.idempotency_scope) == ("purchase", "kiosk:1")
    legs = sorted(purchase.entries.values_list("account__kind", "amount_fen"))
    assert legs == [("sales", 1_200), ("spendable", -1_200)]
    assert inmate_balance(inmate=inmate).spendable_fen == 3_800
    assert_ledger_consistent()


@pytest.mark.django_db
def test_post_purchase_refuses_too_little_money_and_a_frozen_account_and_writes_nothing(
    ledger_snapshot,
):
    inmate = InmateFactory()
    deposit(inmate, 1_000)
    with pytest.raises(errors.InsufficientFunds):
        _post(inmate, 1_001)
    set_frozen(inmate, True)
    before = ledger_snapshot()
    with pytest.raises(errors.AccountFrozen):
        _post(inmate, 100)
    with pytest.raises(errors.InvalidAmount):
        _post(inmate, 0)
    assert ledger_snapshot() == before
    assert not Transaction.objects.filter(kind="purchase").exists()
