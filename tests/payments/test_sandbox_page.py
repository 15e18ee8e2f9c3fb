"""The sandbox provider's payment page applies its signed notification in the same process: a
Pay credits the deposit and a Cancel releases it, with no HTTP request to the site's own
address (which tied up a web worker and failed with an uncaught URLError when SITE_URL did not
reach this server)."""

import urllib.request

import pytest

from ledger.models import Account, Deposit, Transaction
from payments import services
from payments.models import Payment, SandboxCharge
from tests.factories import InmateFactory
from tests.ledger.helpers import key

from .helpers import approved_link, depositor

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_http(monkeypatch, settings):
    settings.SITE_URL = "http://127.0.0.1:9"  # nothing listens there

    def refuse(*args, **kwargs):
        raise AssertionError("the sandbox page made an HTTP request")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def started(client, amount_fen=12_345):
    user = depositor()
    inmate = InmateFactory()
    link = approved_link(user, inmate)
    reserved, pay_url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=amount_fen, idempotency_key=key()
    )
    client.force_login(user)
    return reserved, pay_url


def test_pay_on_the_sandbox_page_credits_the_deposit_without_an_http_self_call(client, no_http):
    reserved, pay_url = started(client)
    answer = client.post(pay_url, {"action": "pay"})
    assert answer.status_code == 302
    assert answer["Location"] == f"/family/deposits/{reserved.reference}"
    deposit = Deposit.objects.get(pk=reserved.pk)
    assert deposit.status == Deposit.Status.CREDITED
    assert Payment.objects.get(deposit=deposit).status == Payment.Status.SETTLED
    assert Transaction.objects.filter(deposit=deposit).count() == 1
    assert Account.objects.get(inmate=deposit.inmate, kind="spendable").balance_fen == 12_345
    # A second press changes nothing more.
    client.post(pay_url, {"action": "pay"})
    assert Transaction.objects.filter(deposit=deposit).count() == 1


def test_cancel_on_the_sandbox_page_releases_the_reservation(client, no_http):
    reserved, pay_url = started(client)
    assert client.post(pay_url, {"action": "cancel"}).status_code == 302
    assert Deposit.objects.get(pk=reserved.pk).status == Deposit.Status.FAILED
    charge = SandboxCharge.objects.get(reference=str(reserved.reference))
    assert charge.status == SandboxCharge.Status.CANCELLED
    assert Account.objects.get(inmate=reserved.inmate, kind="spendable").pending_fen == 0
