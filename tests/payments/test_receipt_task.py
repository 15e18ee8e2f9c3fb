"""The receipt email is sent by a Celery task queued once the credit has committed, never in the
callback that credited the deposit: the callback queues it, the task sends it once however often
it runs or is delivered, a mail server that fails is tried again, and no failure to send moves
any money (invariant 8 stays the ledger's: the receipt is only a notice of it)."""

import smtplib
import time

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from ledger.models import Deposit
from payments import services, tasks
from payments.models import Payment
from tests.concurrency.conftest import _run_together
from tests.factories import InmateFactory
from tests.ledger.helpers import key

from .helpers import approved_link, callback_body, depositor, post_callback

pytestmark = pytest.mark.django_db

EMAIL_BACKEND = "tests.payments.test_receipt_task.{}"


class FailingBackend(EmailBackend):
    """A mail server that refuses the next ``failures_left`` messages, then accepts."""

    failures_left = 0
    attempts = 0

    def send_messages(self, messages):
        FailingBackend.attempts += 1
        if FailingBackend.failures_left:
            FailingBackend.failures_left -= 1
            raise smtplib.SMTPResponseException(451, b"4.3.0 Try again later")
        return super().send_messages(messages)


@pytest.fixture
def failing_mail_server(settings):
    """``failing_mail_server(n)``: the next n messages are refused with a temporary error."""

    def fail(times: int) -> type[FailingBackend]:
        FailingBackend.failures_left, FailingBackend.attempts = times, 0
        settings.EMAIL_BACKEND = EMAIL_BACKEND.format("FailingBackend")
        return FailingBackend

    return fail


@pytest.fixture
def retry_countdowns(monkeypatch) -> list:
    """The countdown of each retry the receipt task asks Celery for. (Run eagerly, Celery
    runs a retry at once instead of after its countdown.)"""
    countdowns = []
    retry = tasks.send_receipt.retry

    def recorded_retry(*args, **kwargs):
        countdowns.append(kwargs.get("countdown"))
        return retry(*args, **kwargs)

    monkeypatch.setattr(tasks.send_receipt, "retry", recorded_retry)
    return countdowns


class SlowBackend(EmailBackend):
    """A mail server that takes a while to accept, so that two deliveries of the task overlap."""

    def send_messages(self, messages):
        time.sleep(0.5)
        return super().send_messages(messages)


def _started(amount_fen: int = 12_345) -> tuple:
    user = depositor()
    link = approved_link(user, InmateFactory())
    reserved, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=amount_fen, idempotency_key=key()
    )
    return user, reserved


def _credited() -> tuple:
    """A deposit credited by its provider's status (the receipt task it queued is not run)."""
    user, reserved = _started()
    services.apply_provider_status(payment_id=reserved.payment.pk, status="settled")
    return user, Payment.objects.get(deposit_id=reserved.pk)


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = "https://pay.example.org"


def test_callback_queues_the_receipt_after_commit_and_sends_nothing_itself(
    client, django_capture_on_commit_callbacks, queued_receipts
):
    user, reserved = _started()

    with django_capture_on_commit_callbacks() as on_commit:
        answer = post_callback(client, callback_body(reserved.payment))
        assert answer.status_code == 200
        assert queued_receipts == []  # nothing queued before the credit commits
    for callback in on_commit:
        callback()

    payment = Payment.objects.get(deposit_id=reserved.pk)
    assert Deposit.objects.get(pk=reserved.pk).status == Deposit.Status.CREDITED
    assert queued_receipts == [{"payment_id": payment.pk}]
    assert mail.outbox == []
    assert payment.receipt_sent_at is None

    assert queued_receipts.run() == [True]
    [email] = mail.outbox
    assert email.to == [user.email]
    assert f"https://pay.example.org/receipts/{reserved.reference}/verify" in email.body


def test_replayed_callbacks_queue_the_receipt_until_it_is_sent_and_it_goes_once(
    client, django_capture_on_commit_callbacks, queued_receipts
):
    _user, reserved = _started()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            post_callback(client, callback_body(reserved.payment))
    assert len(queued_receipts) == 3

    assert queued_receipts.run() == [True, False, False]
    assert len(mail.outbox) == 1

    with django_capture_on_commit_callbacks(execute=True):
        post_callback(client, callback_body(reserved.payment))
    assert queued_receipts == []  # sent: a later replay queues nothing


def test_a_failed_credit_queues_no_receipt(client, django_capture_on_commit_callbacks):
    _user, reserved = _started()
    with django_capture_on_commit_callbacks(execute=True) as on_commit:
        post_callback(client, callback_body(reserved.payment, status="failed"))
    assert on_commit == []
    assert Deposit.objects.get(pk=reserved.pk).status == Deposit.Status.FAILED


def test_the_task_sends_the_receipt_once_however_often_it_runs():
    user, payment = _credited()

    first = tasks.send_receipt.apply(kwargs={"payment_id": payment.pk})
    second = tasks.send_receipt.apply(kwargs={"payment_id": payment.pk})

    assert (first.state, first.result) == ("SUCCESS", True)
    assert (second.state, second.result) == ("SUCCESS", False)
    [email] = mail.outbox
    assert email.to == [user.email]
    payment.refresh_from_db()
    assert payment.receipt_sent_at is not None


def test_the_task_is_acknowledged_late_and_retries_smtp_errors_with_backoff():
    assert issubclass(smtplib.SMTPException, tasks.send_receipt.autoretry_for)
    assert tasks.send_receipt.retry_backoff and tasks.send_receipt.max_retries >= 5
    assert tasks.send_receipt.acks_late and tasks.send_receipt.reject_on_worker_lost


def test_an_smtp_failure_is_retried_and_then_the_receipt_is_sent_once(
    failing_mail_server, retry_countdowns
):
    user, payment = _credited()
    server = failing_mail_server(2)

    sent = tasks.send_receipt.apply(kwargs={"payment_id": payment.pk})

    assert (sent.state, sent.result) == ("SUCCESS", True)
    assert server.attempts == 3
    # Two retries, each after a countdown drawn under the growing backoff (full jitter).
    assert len(retry_countdowns) == 2
    assert 0 <= retry_countdowns[0] <= 30 and 0 <= retry_countdowns[1] <= 60
    [email] = mail.outbox
    assert email.to == [user.email]
    payment.refresh_from_db()
    assert payment.receipt_sent_at is not None

    # The message delivered once more (a redelivery after a lost acknowledgement).
    again = tasks.send_receipt.apply(kwargs={"payment_id": payment.pk})
    assert (again.state, again.result) == ("SUCCESS", False)
    assert len(mail.outbox) == 1


def test_a_receipt_that_cannot_be_sent_changes_no_money(
    failing_mail_server, retry_countdowns, ledger_snapshot
):
    _user, payment = _credited()
    server = failing_mail_server(100)
    before = ledger_snapshot()

    given_up = tasks.send_receipt.apply(kwargs={"payment_id": payment.pk})

    assert given_up.state == "FAILURE"
    assert isinstance(given_up.result, smtplib.SMTPResponseException)
    assert server.attempts == tasks.send_receipt.max_retries + 1
    assert len(retry_countdowns) == server.attempts
    assert ledger_snapshot() == before
    payment.refresh_from_db()
    assert (payment.status, payment.receipt_sent_at) == (Payment.Status.SETTLED, None)
    assert Deposit.objects.get(pk=payment.deposit_id).status == Deposit.Status.CREDITED
    assert mail.outbox == []


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_the_task_delivered_twice_at_once_sends_the_receipt_once(settings):
    _user, payment = _credited()
    settings.EMAIL_BACKEND = EMAIL_BACKEND.format("SlowBackend")

    outcomes = _run_together(
        [lambda: services.send_receipt_once(payment_id=payment.pk) for _ in range(2)]
    )

    assert [outcome.error for outcome in outcomes] == [None, None]
    assert sorted(outcome.value for outcome in outcomes) == [False, True]
    assert len(mail.outbox) == 1
