"""Alipay end to end against a local fake gateway that holds RSA keys generated here: the
adapter signs the page URL, query and refund with the application key, and verifies the
notification and the gateway's answers with Alipay's public key, all through the SDK's real
code. A paid deposit is credited once; a forged, replayed, changed, foreign or unknown
notification credits nothing; the poll recovers a lost notification; a late payment that no
longer fits is refunded through ``alipay.trade.refund`` exactly once."""

import datetime as dt
import json
import uuid

import pytest
from django.utils import timezone, translation

from ledger import batch
from ledger.models import Account, Deposit, Transaction
from payments import credentials, payers, services
from payments.models import MerchantAccount, Payment, ProviderCall
from payments.providers import ProviderError
from payments.providers.alipay import AlipayProvider
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import deposit as credited_deposit
from tests.ledger.helpers import key

from .fake_gateways import AlipayTrade, FakeAlipay, KeyPair, continue_url
from .helpers import approved_link, depositor

pytestmark = pytest.mark.django_db

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


@pytest.fixture
def alipay(httpserver, settings):
    gateway = FakeAlipay(httpserver)
    settings.PAYMENTS_ALIPAY = gateway.account()
    settings.SITE_URL = "http://testserver"
    return gateway


def started(amount_fen=10_000, *, inmate=None, user=None):
    user = user or depositor()
    inmate = inmate or InmateFactory()
    link = approved_link(user, inmate)
    reserved, pay_url = services.start_deposit(
        depositor=user,
        link_id=link.pk,
        amount_fen=amount_fen,
        idempotency_key=key(),
        provider_name="alipay",
    )
    return Payment.objects.get(deposit=reserved), pay_url, user


def opened(client, alipay, amount_fen=10_000, *, inmate=None, agent=DESKTOP):
    """A deposit started, its pay page followed to Alipay's signed page URL, and that URL
    opened at the fake gateway (as the family's browser does): the trade exists there."""
    payment, pay_url, user = started(amount_fen, inmate=inmate)
    client.force_login(user)
    answer = client.get(pay_url, headers={"User-Agent": agent})
    assert answer.status_code == 200
    return payment, alipay.open(continue_url(answer))


def notify(client, body: bytes):
    return client.post(
        "/payments/alipay/callback", data=body, content_type="application/x-www-form-urlencoded"
    )


def spendable_fen(inmate_id):
    return Account.objects.get(inmate_id=inmate_id, kind="spendable").balance_fen


def test_page_pay_url_is_signed_for_the_deposit_with_its_reference_amount_and_expiry(
    client, alipay
):
    payment, trade = opened(client, alipay, 12_345)
    request = alipay.requests[-1]
    biz = json.loads(request["biz_content"])
    assert request["method"] == "alipay.trade.page.pay"
    assert request["notify_url"] == "http://testserver/payments/alipay/callback"
    assert biz["out_trade_no"] == uuid.UUID(payment.provider_reference).hex
    assert biz["total_amount"] == "123.45" == trade.total_amount
    beijing = payment.deposit.expires_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert biz["time_expire"] == beijing.strftime("%Y-%m-%d %H:%M:%S")


def test_phone_gets_the_wap_payment(client, alipay):
    _payment, trade = opened(client, alipay, agent=PHONE)
    assert trade.method == "alipay.trade.wap.pay"
    assert json.loads(alipay.requests[-1]["biz_content"])["product_code"] == "QUICK_WAP_WAY"


def test_paid_notification_credits_once_and_answers_success(
    client, alipay, assert_ledger_consistent
):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    body = alipay.notification(trade)
    for _ in range(3):  # Alipay repeats a notification until it reads "success"
        answer = notify(client, body)
        assert answer.status_code == 200
        assert answer.content == b"success"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert payment.deposit.status == Deposit.Status.CREDITED
    assert Transaction.objects.filter(deposit=payment.deposit).count() == 1
    assert spendable_fen(payment.deposit.inmate_id) == 10_000
    assert_ledger_consistent()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"key": "forged"}, id="signed-with-another-key"),
        pytest.param({"total_amount": "100.01"}, id="changed-amount"),
        pytest.param({"total_amount": "100.0"}, id="one-decimal"),
        pytest.param({"total_amount": "100.000"}, id="three-decimals"),
        pytest.param({"total_amount": "1e2"}, id="exponent"),
        pytest.param({"app_id": "2021000000009999"}, id="other-app-id"),
        pytest.param({"seller_id": "2088000000009999"}, id="other-seller"),
        pytest.param({"out_trade_no": uuid.uuid4().hex}, id="unknown-trade"),
        pytest.param({"out_trade_no": "not-a-reference"}, id="malformed-trade"),
        pytest.param({"sign_type": "RSA"}, id="rsa1-sign-type"),
    ],
)
def test_untrustworthy_notification_is_refused_and_credits_nothing(
    client, alipay, tamper, ledger_snapshot
):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    tamper = dict(tamper)
    if tamper.pop("key", None):
        tamper["key"] = KeyPair.generate()
    before = ledger_snapshot()
    answer = notify(client, alipay.notification(trade, **tamper))
    assert answer.status_code == 400
    assert answer.content != b"success"
    assert ledger_snapshot() == before
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_notification_changed_after_signing_is_refused(client, alipay, ledger_snapshot):
    payment, trade = opened(client, alipay, 10_000)
    # An unpaid trade's notification, turned into a paid one after Alipay signed it.
    body = alipay.notification(trade).replace(
        b"trade_status=WAIT_BUYER_PAY", b"trade_status=TRADE_SUCCESS"
    )
    assert b"trade_status=TRADE_SUCCESS" in body
    before = ledger_snapshot()
    assert notify(client, body).status_code == 400
    assert ledger_snapshot() == before


def test_notification_for_another_facilitys_account_is_refused(client, alipay, ledger_snapshot):
    """A facility with its own merchant account: a notification signed for the environment's
    account (another merchant) cannot credit that facility's deposit."""
    facility = FacilityFactory()
    own_keys = KeyPair.generate()
    MerchantAccount.objects.create(
        facility=facility,
        provider="alipay",
        merchant_id="2021000000000777",
        secrets_encrypted=credentials.encrypt_config(
            alipay.account(app_id="2021000000000777", alipay_public_key=own_keys.public_pem)
        ),
    )
    payment, _url, _user = started(10_000, inmate=InmateFactory(facility=facility))
    trade = AlipayTrade(
        out_trade_no=uuid.UUID(payment.provider_reference).hex,
        total_amount="100.00",
        method="alipay.trade.page.pay",
        time_expire="",
        status="TRADE_SUCCESS",
    )
    before = ledger_snapshot()
    assert notify(client, alipay.notification(trade)).status_code == 400
    assert ledger_snapshot() == before
    # The same notification signed for the facility's own account is accepted.
    own = alipay.notification(trade, app_id="2021000000000777", key=own_keys)
    assert notify(client, own).content == b"success"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED


def test_closed_trade_notification_releases_the_reservation(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    trade.status = "TRADE_CLOSED"
    assert notify(client, alipay.notification(trade)).content == b"success"
    payment.refresh_from_db()
    assert payment.deposit.status == Deposit.Status.FAILED
    assert spendable_fen(payment.deposit.inmate_id) == 0


def test_poll_credits_a_payment_whose_notification_was_lost(
    client, alipay, assert_ledger_consistent
):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    asked = services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    assert asked == 1
    assert alipay.requests[-1]["method"] == "alipay.trade.query"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert spendable_fen(payment.deposit.inmate_id) == 10_000
    assert_ledger_consistent()


def test_poll_leaves_an_unopened_or_unpaid_trade_pending(client, alipay):
    unopened, _url, _user = started(10_000)
    unpaid, _trade = opened(client, alipay, 10_000)
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    for payment in (unopened, unpaid):
        payment.refresh_from_db()
        assert payment.status == Payment.Status.PENDING
        assert payment.deposit.status == Deposit.Status.CREATED


def test_poll_does_not_trust_an_answer_with_a_bad_signature(client, alipay, ledger_snapshot):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    alipay.alipay = KeyPair.generate()  # the gateway now signs with a key we do not know
    before = ledger_snapshot()
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    assert ledger_snapshot() == before
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_late_payment_that_no_longer_fits_is_refunded_once(
    client,
    alipay,
    assert_ledger_consistent,
    django_capture_on_commit_callbacks,
    queued_provider_calls,
):
    inmate = InmateFactory()
    payment, trade = opened(client, alipay, 60_000, inmate=inmate)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(hours=1))
    credited_deposit(inmate, 50_000)  # the month's room is now 500 yuan, less than 600
    alipay.pay(trade.out_trade_no)
    body = alipay.notification(trade)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert notify(client, body).content == b"success"
    # The refund was decided and recorded once; the gateway has not been called yet.
    call = ProviderCall.objects.get(payment=payment)
    assert (call.kind, call.request_number) == ("refund", f"{trade.out_trade_no}_refund")
    assert trade.refunds == {}
    assert queued_provider_calls == [{"call_id": call.pk}]
    assert queued_provider_calls.run() == ["done"]
    payment.refresh_from_db()
    payment.deposit.refresh_from_db()
    assert payment.deposit.status == Deposit.Status.REFUNDED
    assert payment.status == Payment.Status.REFUNDED
    assert trade.refunds == {f"{trade.out_trade_no}_refund": "600.00"}
    refunds = [r for r in alipay.requests if r.get("method") == "alipay.trade.refund"]
    assert len(refunds) == 1
    assert not Transaction.objects.filter(deposit=payment.deposit).exists()
    assert spendable_fen(inmate.pk) == 50_000
    assert_ledger_consistent()


def test_refund_refused_by_alipay_is_recorded_and_retried_by_the_sweep_when_due(
    client,
    alipay,
    assert_ledger_consistent,
    django_capture_on_commit_callbacks,
    queued_provider_calls,
):
    inmate = InmateFactory()
    payment, trade = opened(client, alipay, 60_000, inmate=inmate)
    batch.expire_stale_deposits(now=timezone.now() + dt.timedelta(hours=1))
    credited_deposit(inmate, 50_000)
    alipay.pay(trade.out_trade_no)
    body = alipay.notification(trade)
    trade.status = "WAIT_BUYER_PAY"  # the gateway refuses to refund an unpaid trade
    with django_capture_on_commit_callbacks(execute=True):
        # The decision stands whatever the gateway says later: Alipay hears "success".
        assert notify(client, body).content == b"success"
    assert queued_provider_calls.run() == ["pending"]
    call = ProviderCall.objects.get(payment=payment)
    assert call.attempts == 1
    assert "ACQ.TRADE_STATUS_ERROR" in call.last_error
    assert trade.refunds == {}
    payment.refresh_from_db()
    assert payment.status == Payment.Status.REFUNDED
    # Not due yet: the sweep leaves it; once due, the sweep queues it and it succeeds.
    assert services.retry_due_provider_calls() == 0
    trade.status = "TRADE_SUCCESS"
    assert services.retry_due_provider_calls(now=call.next_attempt_at) == 1
    assert queued_provider_calls == [{"call_id": call.pk}]
    services.make_provider_call(call_id=call.pk, now=call.next_attempt_at)
    call.refresh_from_db()
    assert (call.state, call.attempts, call.last_error) == ("done", 2, "")
    assert list(trade.refunds.values()) == ["600.00"]
    assert_ledger_consistent()


def test_refund_is_idempotent_at_the_gateway_through_out_request_no(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    provider = AlipayProvider()
    provider.refund(payment)
    provider.refund(payment)
    assert trade.refunds == {f"{trade.out_trade_no}_refund": "100.00"}


def test_pay_page_belongs_to_the_depositor(client, alipay):
    _payment, pay_url, _user = started(10_000)
    client.force_login(depositor())
    assert client.get(pay_url).status_code == 404


def test_provider_without_an_account_is_not_offered_and_refused(settings):
    settings.PAYMENTS_ALIPAY = {"app_id": ""}
    facility = FacilityFactory()
    from payments.providers import available_provider_names

    assert "alipay" not in available_provider_names(facility.pk)
    with translation.override("en"), pytest.raises(ProviderError, match="Alipay is not available"):
        started(10_000, inmate=InmateFactory(facility=facility))


def test_query_string_signature_covers_every_parameter(client, alipay):
    """The signed page URL is refused by the gateway if any parameter is changed."""
    payment, _trade = opened(client, alipay, 10_000)
    checkout = payment.checkouts.get()
    tampered = checkout.pay_url.replace("100.00", "1.00")
    alipay.trades.clear()
    import urllib.request

    with urllib.request.urlopen(tampered, timeout=10) as answer:  # noqa: S310
        assert b"invalid-signature" in answer.read()
    assert alipay.trades == {}
    assert urllib.parse.urlparse(tampered).path == "/gateway.do"


def test_poll_survives_an_account_whose_keys_cannot_be_read(client, alipay, settings):
    """One broken account must not stop the poll for every other payment."""
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    settings.PAYMENTS_ALIPAY = alipay.account(app_private_key="not a key")
    assert services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5)) == 1
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING


def test_a_reload_signs_a_fresh_url_for_the_same_trade_under_the_same_account(
    client, alipay, settings
):
    payment, trade = opened(client, alipay, 10_000)
    # The environment's account changes meanwhile: the trade stays with the account it began
    # under, so the new page still names the first app and is signed with its key.
    settings.PAYMENTS_ALIPAY = alipay.account(app_id="2021000000000555")
    again = client.get(f"/payments/alipay/pay/{payment.provider_reference}")
    assert again.status_code == 502  # the first account is no longer configured anywhere
    settings.PAYMENTS_ALIPAY = alipay.account()
    again = client.get(f"/payments/alipay/pay/{payment.provider_reference}")
    assert alipay.open(continue_url(again)) is trade
    assert payment.checkouts.count() == 1


# --- the formats Alipay really sends and shows -------------------------------------------


def test_a_notification_with_an_empty_field_verifies_as_the_official_verifiers_check_it(
    client, alipay
):
    """Alipay signs an empty parameter as ``k=``; dropping it before verifying refused every
    such notification."""
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    body = alipay.notification(trade, passback_params="", body="")
    assert b"passback_params=&" in body
    assert notify(client, body).content == b"success"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert spendable_fen(payment.deposit.inmate_id) == 10_000


def test_an_empty_field_added_after_signing_is_refused(client, alipay, ledger_snapshot):
    _payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    body = alipay.notification(trade) + b"&passback_params="
    before = ledger_snapshot()
    assert notify(client, body).status_code == 400
    assert ledger_snapshot() == before


def test_a_notification_without_sign_type_is_taken_as_rsa2(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    body = alipay.notification(trade, sign_type=None)
    assert b"sign_type" not in body
    assert notify(client, body).content == b"success"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED


def test_a_notification_signed_with_rsa_sha1_is_refused(client, alipay, ledger_snapshot):
    _payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    before = ledger_snapshot()
    assert notify(client, alipay.notification(trade, sign_type="RSA")).status_code == 400
    assert ledger_snapshot() == before


def test_the_phone_payment_sends_a_quit_url_back_to_the_deposit(client, alipay):
    payment, _trade = opened(client, alipay, agent=PHONE)
    biz = json.loads(alipay.requests[-1]["biz_content"])
    assert biz["quit_url"] == (f"http://testserver/family/deposits/{payment.deposit.reference}")
    page, _trade = opened(client, alipay, agent=DESKTOP)
    assert "quit_url" not in json.loads(alipay.requests[-1]["biz_content"])


def _bare_base64(pem: str) -> str:
    """A key as Alipay's console shows it: the PEM body alone, on one line."""
    return "".join(line for line in pem.strip().splitlines() if "-----" not in line)


def test_keys_pasted_as_bare_base64_work_from_the_environment(client, alipay, settings):
    settings.PAYMENTS_ALIPAY = alipay.account(
        app_private_key=_bare_base64(alipay.merchant.private_pem),
        alipay_public_key=_bare_base64(alipay.alipay.public_pem),
    )
    payment, trade = opened(client, alipay, 10_000)  # the page URL signed with the key
    alipay.pay(trade.out_trade_no)
    assert notify(client, alipay.notification(trade)).content == b"success"
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED


def test_the_admin_stores_a_bare_base64_key_as_pem_and_refuses_an_unreadable_one(client, alipay):
    client.force_login(StaffFactory(is_superuser=True))
    facility = FacilityFactory()
    keys = alipay.account(
        app_id="2021000000000888",
        app_private_key=_bare_base64(alipay.merchant.private_pem),
        alipay_public_key=_bare_base64(alipay.alipay.public_pem),
    )
    broken = {**keys, "alipay_public_key": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"}
    with translation.override("en"):
        refused = client.post(
            "/admin/payments/merchantaccount/add/",
            {"facility": facility.pk, "provider": "alipay", "secrets": json.dumps(broken)},
        )
    assert refused.status_code == 200
    assert "These keys cannot be read: alipay_public_key" in refused.content.decode()
    assert not MerchantAccount.objects.exists()
    saved = client.post(
        "/admin/payments/merchantaccount/add/",
        {"facility": facility.pk, "provider": "alipay", "secrets": json.dumps(keys)},
    )
    assert saved.status_code == 302
    stored = credentials.decrypt_config(MerchantAccount.objects.get().secrets_encrypted)
    assert stored["alipay_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert stored["app_private_key"].startswith("-----BEGIN PRIVATE KEY-----")


def test_a_system_check_names_an_environment_key_that_cannot_be_read(alipay, settings):
    from payments import checks

    assert checks.check_environment_merchant_keys() == []
    settings.PAYMENTS_ALIPAY = alipay.account(
        alipay_public_key=_bare_base64(alipay.alipay.public_pem)
    )
    assert checks.check_environment_merchant_keys() == []  # bare base64 is accepted
    settings.PAYMENTS_ALIPAY = alipay.account(alipay_public_key="not a key at all")
    found = checks.check_environment_merchant_keys()
    assert [message.id for message in found] == ["payments.E003"]
    assert "ALIPAY_PUBLIC_KEY" in found[0].msg


def test_the_sdk_still_takes_its_gateway_from_gateway(alipay, monkeypatch):
    """The adapter points python-alipay-sdk at a gateway through its private ``_gateway``
    (alipay.py says why). This fails loudly when an upgrade moves it: the SDK's own server calls
    must reach the configured gateway, never production."""
    import alipay as sdk

    from payments import credentials
    from payments.providers import ProviderError
    from payments.providers import alipay as adapter

    account = credentials.Account(
        "alipay", None, alipay.account(gateway="http://127.0.0.1:9/gateway.do")
    )
    asked = []

    def urlopen(url, **kwargs):
        asked.append(url)
        raise OSError("nothing listens there")

    monkeypatch.setattr(sdk, "urlopen", urlopen)
    with pytest.raises(ProviderError, match="nothing listens there"):
        adapter._Client(account).call("alipay.trade.query", {"out_trade_no": "0" * 32})
    assert len(asked) == 1
    assert asked[0].startswith("http://127.0.0.1:9/gateway.do?")
    assert "method=alipay.trade.query" in asked[0]


def test_a_client_is_refused_when_the_sdk_no_longer_has_the_gateway_attribute(alipay, monkeypatch):
    from alipay import AliPay

    from payments import credentials
    from payments.providers import ProviderError
    from payments.providers import alipay as adapter

    original = AliPay.__init__

    def renamed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._gateway_url = self.__dict__.pop("_gateway")

    monkeypatch.setattr(AliPay, "__init__", renamed)
    account = credentials.Account("alipay", None, alipay.account())
    with pytest.raises(ProviderError, match="AliPay._gateway"):
        adapter._Client(account)


def _stored_anywhere(payment, value: str) -> bool:
    row = Payment.objects.filter(pk=payment.pk).values().get()
    return any(value in str(column) for column in row.values())


def test_the_notification_keeps_the_buyer_as_a_keyed_hash_and_a_masked_label(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    assert notify(client, alipay.notification(trade)).content == b"success"
    payment.refresh_from_db()
    assert payment.payer_fingerprint == payers.fingerprint("alipay", "2088102177846875")
    assert payment.payer_label == "159****5620"  # as Alipay masked it
    assert payment.payer_name == ""  # a notification never carries the buyer's name
    assert not _stored_anywhere(payment, "2088102177846875")


def test_the_poll_keeps_the_buyer_alipay_names_in_its_query_answer(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    trade.buyer_id = "2088000011112222"
    alipay.pay(trade.out_trade_no)
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert payment.payer_fingerprint == payers.fingerprint("alipay", "2088000011112222")


def test_an_application_with_open_ids_keeps_the_buyer_open_id(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    body = alipay.notification(trade, buyer_id=None, buyer_open_id="074a1CcTG1LelxKe4xQC0zgNdId0")
    assert notify(client, body).content == b"success"
    payment.refresh_from_db()
    assert payment.payer_fingerprint == payers.fingerprint("alipay", "074a1CcTG1LelxKe4xQC0zgNdId0")


def test_the_poll_keeps_the_buyers_name_when_alipays_query_returns_it(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    trade.buyer_user_name = "张三"
    alipay.pay(trade.out_trade_no)
    services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SETTLED
    assert (payment.payer_label, payment.payer_name) == ("159****5620", "张三")


def test_a_query_answer_after_the_notification_adds_the_same_buyers_name_only(client, alipay):
    payment, trade = opened(client, alipay, 10_000)
    alipay.pay(trade.out_trade_no)
    assert notify(client, alipay.notification(trade)).content == b"success"
    someone_else = payers.Payer(provider_id="2088000099998888", label="138****0000", name="李四")
    services.apply_provider_status(payment_id=payment.pk, status="settled", payer=someone_else)
    payment.refresh_from_db()
    assert payment.payer_name == ""  # another payer's name is never put on this payment
    same = payers.Payer(provider_id="2088102177846875", label="159****5620", name="张三")
    services.apply_provider_status(payment_id=payment.pk, status="settled", payer=same)
    payment.refresh_from_db()
    assert payment.payer_name == "张三"
    assert payment.payer_fingerprint == payers.fingerprint("alipay", "2088102177846875")
