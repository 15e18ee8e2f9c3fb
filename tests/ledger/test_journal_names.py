"""How the journal names its rows on staff pages: kinds in words, amounts in yuan."""

import pytest
from django.utils import translation

from ledger.models import Transaction
from tests.factories import InmateFactory
from tests.ledger.helpers import deposit

pytestmark = pytest.mark.django_db


def test_a_journal_transaction_and_its_entries_are_named_in_words_and_yuan():
    inmate = InmateFactory()
    credited = deposit(inmate, 12_345)
    transaction_ = Transaction.objects.get(deposit=credited)
    entry = transaction_.entries.get(account__inmate=inmate, account__kind="spendable")
    with translation.override("en"):
        assert str(transaction_) == f"#{transaction_.pk} Deposit credited"
        assert str(entry) == f"{inmate.inmate_number} Inmate spendable +¥123.45"
    with translation.override("zh-hans"):
        assert "Deposit" not in str(transaction_) and "spendable" not in str(entry)


def test_a_deposit_and_its_month_are_named_in_words_with_the_inmate_number():
    inmate = InmateFactory()
    credited = deposit(inmate, 500)
    with translation.override("zh-hans"):
        assert str(credited) == f"汇款 {credited.reference}（已入账）"
    assert str(credited.period).startswith(f"{inmate.inmate_number} ")
