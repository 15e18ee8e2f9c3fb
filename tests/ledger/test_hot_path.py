"""The hot paths return what they wrote, without reading it back, and behave as before.

``credit_deposit`` returns the deposit built from its status update's ``RETURNING`` row and
``post_purchase`` (under the lock a kiosk order takes) the transaction built from what it
inserted: each must equal what an ORM
read returns, field for field, and the statements sent must stay the few that do the work
(a read slipped back in fails here). Replays still return the first result, and crediting a
deposit that is not awaiting payment is still refused.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commissary import errors
from ledger import services
from ledger.models import Deposit, Transaction
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit, key, kiosk_order, post_purchase

pytestmark = pytest.mark.django_db


def _fields(instance):
    return {
        field.attname: getattr(instance, field.attname) for field in type(instance)._meta.fields
    }


def _statements(captured):
    """What was sent, less transaction control (a test runs inside a transaction of its own,
    so the service's ``atomic()`` is a savepoint here)."""
    control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
    return [q["sql"] for q in captured if not q["sql"].startswith(control)]


def _reserve(inmate, amount_fen=1_000, **kwargs):
    return services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key(),
        **kwargs,
    )


def test_a_credited_deposit_is_returned_as_written_in_four_statements():
    inmate = InmateFactory(facility=FacilityFactory(deposit_fee_rate_bp=100))
    reserved = _reserve(inmate, 2_500)

    with CaptureQueriesContext(connection) as captured:
        credited = services.credit_deposit(deposit_id=reserved.pk, provider_reference="PAY-7")

    sent = _statements(captured)
    assert len(sent) == 4, sent  # the lock, the deposit, its period, the journal posting
    assert sent[0].lstrip().startswith("SELECT") and "FOR NO KEY UPDATE OF s, h" in sent[0]
    assert not any(sql.lstrip().startswith("SELECT") for sql in sent[1:]), sent
    assert isinstance(credited, Deposit) and not credited._state.adding
    assert _fields(credited) == _fields(Deposit.objects.get(pk=reserved.pk))
    assert (credited.status, credited.provider_reference) == (Deposit.Status.CREDITED, "PAY-7")
    assert credited.reference == reserved.reference and credited.resolved_at is not None
    legs = Transaction.objects.get(deposit=credited).entries.values_list(
        "account__kind", "amount_fen"
    )
    assert sorted(legs) == [("clearing", -2_525), ("fees", 25), ("spendable", 2_500)]


def test_a_replayed_credit_returns_the_first_and_keeps_the_first_provider_reference():
    inmate = InmateFactory()
    reserved = _reserve(inmate)
    first = services.credit_deposit(deposit_id=reserved.pk, provider_reference="PAY-1")

    again = services.credit_deposit(deposit_id=reserved.pk, provider_reference="PAY-2")

    assert _fields(again) == _fields(first)
    assert Transaction.objects.filter(deposit=reserved).count() == 1
    assert inmate.ledger_accounts.get(kind="spendable").balance_fen == 1_000


@pytest.mark.parametrize("status", [Deposit.Status.FAILED, Deposit.Status.EXPIRED])
def test_crediting_a_released_deposit_is_refused_and_credits_nothing(status, ledger_snapshot):
    inmate = InmateFactory()
    reserved = _reserve(inmate)
    services.release_deposit(deposit_id=reserved.pk, status=status)
    before = ledger_snapshot()

    with pytest.raises(errors.DepositNotPending):
        services.credit_deposit(deposit_id=reserved.pk)

    assert ledger_snapshot() == before


def test_crediting_a_deposit_that_does_not_exist_is_refused(ledger_snapshot):
    InmateFactory()
    before = ledger_snapshot()
    with pytest.raises(errors.DepositNotFound):
        services.credit_deposit(deposit_id=987_654)
    assert ledger_snapshot() == before


def test_a_deposit_is_credited_to_its_own_providers_clearing_account():
    inmate = InmateFactory()
    reserved = _reserve(inmate, 1_000)
    credited = services.credit_deposit(deposit_id=reserved.pk)
    legs = dict(
        Transaction.objects.get(deposit=credited).entries.values_list(
            "account__kind", "account__provider"
        )
    )
    assert legs["clearing"] == reserved.provider == "sandbox"


def test_a_purchase_is_returned_as_written_in_two_statements():
    inmate = InmateFactory()
    deposit(inmate, 5_000)

    with CaptureQueriesContext(connection) as captured:
        purchase = post_purchase(inmate.pk, 1_200, idempotency_key="order-9", memo="soap")

    sent = _statements(captured)
    assert len(sent) == 2, sent  # the lock, then balances, transaction and entries at once
    assert not any(sql.lstrip().startswith("SELECT") for sql in sent[1:]), sent
    assert isinstance(purchase, Transaction) and not purchase._state.adding
    assert _fields(purchase) == _fields(Transaction.objects.get(pk=purchase.pk))
    assert (purchase.kind, purchase.memo, purchase.idempotency_scope) == (
        "purchase",
        "soap",
        "kiosk:1",
    )
    assert purchase.entries.get(account__kind="spendable").amount_fen == -1_200


def test_a_replayed_purchase_returns_the_first_purchase_as_stored():
    inmate = InmateFactory()
    deposit(inmate, 5_000)
    first = kiosk_order(inmate, 4_000, idempotency_key="o")
    # The replay no longer fits the balance, yet it returns the first purchase.
    again = kiosk_order(inmate, 4_000, idempotency_key="o")
    assert _fields(again) == _fields(first)
    assert Transaction.objects.filter(kind="purchase").count() == 1
