"""A payment the family cancels on the payment page is not a failure: the deposit's
reservation is released as for one (the deposit is ``failed``, so the caps and the ledger see
one state), the payment is ``cancelled``, and the family reads that they cancelled it, that no
money was taken, and can try again with the same amount for the same inmate."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import DepositorBlock, DepositorLink
from ledger.models import Account, Deposit
from payments import services
from payments.models import Payment, SandboxCharge
from tests.factories import InmateFactory, StaffFactory
from tests.ledger.helpers import key
from tests.payments.helpers import approved_link, depositor

pytestmark = pytest.mark.django_db

ZH = {"accept-language": "zh-hans"}
EN = {"accept-language": "en"}


def started(client, amount_fen=12_345):
    user = depositor()
    inmate = InmateFactory()
    link = approved_link(user, inmate)
    reserved, pay_url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=amount_fen, idempotency_key=key()
    )
    client.force_login(user)
    return reserved, pay_url, link


def test_cancel_releases_the_reservation_and_records_a_cancelled_payment(client):
    reserved, pay_url, _link = started(client)
    client.post(pay_url, {"action": "cancel"})
    deposit = Deposit.objects.get(pk=reserved.pk)
    assert deposit.status == Deposit.Status.FAILED
    assert Payment.objects.get(deposit=deposit).status == Payment.Status.CANCELLED
    account = Account.objects.get(inmate=deposit.inmate, kind="spendable")
    assert (account.balance_fen, account.pending_fen) == (0, 0)


def test_a_cancelled_payment_says_so_and_offers_the_same_deposit_again(client):
    reserved, pay_url, link = started(client)
    answer = client.post(pay_url, {"action": "cancel"}, headers=EN)
    page = client.get(answer["Location"], headers=EN).content.decode()
    assert "You cancelled this payment. No money was taken" in page
    assert "did not go through" not in page
    assert "Failed" not in page
    retry = f"/family/links/{link.pk}/deposit?amount=123.45"
    assert f'href="{retry}"' in page

    form = client.get(retry, headers=EN).content.decode()
    assert 'value="123.45"' in form
    # Nothing is reserved until the family checks the total and confirms again.
    assert Deposit.objects.filter(inmate=link.inmate).count() == 1


def test_the_cancelled_payment_reads_as_cancelled_in_chinese_not_as_a_failure(client):
    reserved, pay_url, _link = started(client)
    client.post(pay_url, {"action": "cancel"})
    page = client.get(f"/family/deposits/{reserved.reference}", headers=ZH).content.decode()
    assert "已取消" in page
    assert "您已取消这笔付款" in page
    assert "付款未成功" not in page
    assert "重新汇款" in page
    history = client.get("/family/deposits/", headers=ZH).content.decode()
    assert "已取消" in history
    assert "失败" not in history


def test_a_failed_payment_still_reads_as_a_failure_with_no_try_again(client):
    reserved, pay_url, _link = started(client)
    client.post(pay_url, {"action": "fail"})
    assert Payment.objects.get(deposit=reserved).status == Payment.Status.FAILED
    page = client.get(f"/family/deposits/{reserved.reference}", headers=ZH).content.decode()
    assert "付款未成功" in page
    assert "已取消" not in page
    assert "重新汇款" not in page


def test_no_try_again_when_the_depositor_may_no_longer_send_to_that_inmate(client):
    reserved, pay_url, link = started(client)
    client.post(pay_url, {"action": "cancel"})
    DepositorBlock.objects.create(
        depositor=link.depositor,
        facility=link.inmate.facility,
        reason="test",
        created_by=StaffFactory(),
    )
    page = client.get(f"/family/deposits/{reserved.reference}", headers=EN).content.decode()
    assert "You cancelled this payment" in page
    assert "/deposit?amount=" not in page
    DepositorBlock.objects.all().delete()
    DepositorLink.objects.filter(pk=link.pk).update(status=DepositorLink.Status.REJECTED)
    page = client.get(f"/family/deposits/{reserved.reference}", headers=EN).content.decode()
    assert "/deposit?amount=" not in page


@pytest.mark.parametrize("amount", ["abc", "-5", "0", "1.234", "99999999999"])
def test_an_unreadable_amount_to_try_again_leaves_the_form_empty(client, amount):
    _reserved, _pay_url, link = started(client)
    form = client.get(f"/family/links/{link.pk}/deposit", {"amount": amount}).content.decode()
    assert f'value="{amount}"' not in form
    assert 'name="amount"' in form


def test_the_poll_of_a_cancelled_sandbox_charge_records_a_cancelled_payment(client):
    reserved, _pay_url, _link = started(client)
    SandboxCharge.objects.filter(reference=str(reserved.reference)).update(
        status=SandboxCharge.Status.CANCELLED
    )
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    assert Deposit.objects.get(pk=reserved.pk).status == Deposit.Status.FAILED
    assert Payment.objects.get(deposit=reserved).status == Payment.Status.CANCELLED


def test_a_cancelled_payment_that_settles_later_is_still_credited_once(client):
    """A provider may report the money after all; cancelled is no dead end (as failed is not)."""
    reserved, pay_url, _link = started(client)
    client.post(pay_url, {"action": "cancel"})
    payment = Payment.objects.get(deposit=reserved)
    services.apply_provider_status(payment_id=payment.pk, status="settled")
    services.apply_provider_status(payment_id=payment.pk, status="settled")
    assert Deposit.objects.get(pk=reserved.pk).status == Deposit.Status.CREDITED
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SETTLED
    assert Account.objects.get(inmate=reserved.inmate, kind="spendable").balance_fen == 12_345


def test_a_deposit_not_yet_paid_reads_as_waiting_for_its_payment_in_chinese(client):
    started(client)
    history = client.get("/family/deposits/", headers=ZH).content.decode()
    assert "待付款" in history
    assert "待领取" not in history  # "waiting to be collected": nothing is to be collected
    assert "Pending" in client.get("/family/deposits/", headers=EN).content.decode()
