"""Receipts: sent once by email when a deposit is credited, with the verification URL and its
QR code; the verification page confirms a credited deposit and shows nothing private; the
sandbox payment page belongs to the depositor who started the payment."""

import pytest
from django.core import mail

from ledger.models import Deposit
from payments import services
from tests.factories import InmateFactory
from tests.ledger.helpers import key

from .helpers import approved_link, callback_body, depositor, post_callback

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(client, settings, django_capture_on_commit_callbacks, queued_receipts):
    """A deposit paid through three identical callbacks, and the receipt tasks they queued on
    commit run as the worker would run them."""
    with django_capture_on_commit_callbacks(execute=True):
        paid = _paid(client, settings)
    queued_receipts.run()
    return paid


def _paid(client, settings):
    settings.SITE_URL = "https://pay.example.org"
    user = depositor()
    inmate = InmateFactory(surname="Zhang", given_name="Wei")
    link = approved_link(user, inmate)
    reserved, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=12_345, idempotency_key=key()
    )
    for _ in range(3):
        post_callback(client, callback_body(reserved.payment))
    return user, Deposit.objects.get(pk=reserved.pk)


def test_receipt_email_is_sent_once_with_the_verification_url_and_qr(paid):
    user, paid = paid
    [email] = mail.outbox
    url = f"https://pay.example.org/receipts/{paid.reference}/verify"
    assert email.to == [user.email]
    assert url in email.body and "¥123.45" in email.body
    html = email.alternatives[0][0]
    assert url in html and 'src="data:image/svg+xml;base64,' in html


def test_verification_confirms_a_credited_deposit_and_shows_nothing_private(client, paid):
    user, paid = paid
    page = client.get(f"/receipts/{paid.reference}/verify", headers={"accept-language": "en"})
    text = page.content.decode()
    assert page.status_code == 200 and "Genuine" in text and "¥123.45" in text
    assert "Zhang" not in text and user.email not in text
    assert paid.inmate.inmate_number not in text


def test_verification_of_an_unknown_or_uncredited_reference_says_so(client):
    user = depositor()
    link = approved_link(user, InmateFactory())
    pending, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=100, idempotency_key=key()
    )
    for reference in (pending.reference, "00000000-0000-0000-0000-000000000000"):
        page = client.get(f"/receipts/{reference}/verify", headers={"accept-language": "en"})
        assert page.status_code == 404
        assert "No credited deposit has this reference." in page.content.decode()


def test_sandbox_page_is_the_depositors_own(client, settings):
    user = depositor()
    link = approved_link(user, InmateFactory())
    pending, url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=100, idempotency_key=key()
    )
    client.force_login(depositor())
    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "pay"}).status_code == 404
    client.force_login(user)
    assert client.get(url).status_code == 200
    settings.PAYMENTS_SANDBOX = False
    assert client.get(url).status_code == 404


def test_receipt_page_shows_the_qr_and_the_details_entered(client, paid):
    user, paid = paid
    client.force_login(user)
    page = client.get(f"/family/deposits/{paid.reference}", headers={"accept-language": "en"})
    text = page.content.decode()
    assert 'class="qr" src="data:image/svg+xml;base64,' in text
    assert paid.inmate.inmate_number in text and "Zhang" in text
    assert f"https://pay.example.org/receipts/{paid.reference}/verify" in text


def test_the_plain_text_part_shows_names_as_typed_and_the_html_part_escapes_them(
    client, settings, django_capture_on_commit_callbacks, queued_receipts
):
    """The text part was rendered with HTML autoescaping: "O'Brien & Sons" read
    "O&#x27;Brien &amp; Sons" in the family's mail program."""
    settings.SITE_URL = "https://pay.example.org"
    user = depositor()
    inmate = InmateFactory(facility__name="Beijing No. 2 <North> & East")
    link = approved_link(user, inmate)
    link.entered_surname = "O'Brien & Sons"
    link.save()
    reserved, _url = services.start_deposit(
        depositor=user, link_id=link.pk, amount_fen=12_345, idempotency_key=key()
    )
    with django_capture_on_commit_callbacks(execute=True):
        post_callback(client, callback_body(reserved.payment))
    queued_receipts.run()
    [email] = mail.outbox
    assert "O'Brien & Sons" in email.body
    assert "Beijing No. 2 <North> & East" in email.body
    assert "&amp;" not in email.body and "&#x27;" not in email.body and "&lt;" not in email.body
    html = email.alternatives[0][0]
    assert "O&#x27;Brien &amp; Sons" in html
    assert "<North>" not in html
