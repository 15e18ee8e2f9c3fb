from ledger import services
from ledger.selectors import inmate_balance
from tests.factories import InmateFactory
from tests.ledger.helpers import kiosk_order


def test_deposit_then_purchase_moves_money_and_keeps_the_ledger_consistent(
    db, assert_ledger_consistent
):
    inmate = InmateFactory()
    deposit = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=10_000,
        idempotency_key="d1",
    )
    services.credit_deposit(deposit_id=deposit.pk)
    kiosk_order(inmate, 2_500, idempotency_key="p1")
    balance = inmate_balance(inmate=inmate)
    assert (balance.spendable_fen, balance.month_received_fen) == (7_500, 10_000)
    assert_ledger_consistent()
