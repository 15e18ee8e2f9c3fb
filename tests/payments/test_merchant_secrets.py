"""Merchant secrets under FIELD_ENCRYPTION_KEYS: the first key encrypts and every key decrypts,
so SECRET_KEY can change without losing a facility's keys; ``rotate_payment_secrets``
re-encrypts every row with the newest key, with its progress; production refuses to start
without the setting (a system check). A row no key decrypts breaks only its own facility:
other facilities' callbacks and polls go on, and staff see the broken account."""

import datetime as dt
import io
import uuid

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from commissary import errors
from ledger.models import Account
from payments import checks, credentials, services
from payments.models import MerchantAccount, Payment
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import key

from .fake_gateways import FakeWechatPay
from .helpers import approved_link, depositor

CONFIG = {"app_id": "2021000000000042", "app_private_key": "k", "alipay_public_key": "p"}


def test_the_first_key_encrypts_and_every_key_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    under_old = credentials.encrypt_config(CONFIG)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    under_new = credentials.encrypt_config(CONFIG)
    assert Fernet(new.encode()).decrypt(under_new.encode())  # the first key encrypted it
    assert credentials.decrypt_config(under_old) == credentials.decrypt_config(under_new) == CONFIG


def test_a_comma_separated_setting_is_read_as_a_list(settings):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = f"{first}, {second}"
    assert credentials.configured_keys() == [first, second]


def test_changing_secret_key_loses_nothing_under_the_configured_keys(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = credentials.encrypt_config(CONFIG)
    settings.SECRET_KEY = "a brand new secret key for this installation, long enough"
    settings.SECRET_KEY_FALLBACKS = []
    assert credentials.decrypt_config(token) == CONFIG


def test_unreadable_credentials_are_a_domain_error_with_a_sentence(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    token = credentials.encrypt_config(CONFIG)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(errors.DomainError) as refused:
        credentials.decrypt_config(token)
    assert refused.value.code == "credentials_unreadable"
    assert "enter them again" in str(refused.value.message)


@pytest.mark.django_db
def test_rotation_reencrypts_every_row_with_the_newest_key_and_reports_progress(settings):
    settings.FIELD_ENCRYPTION_KEYS = []  # rows written before the setting: the derived key
    rows = [
        MerchantAccount.objects.create(
            facility=FacilityFactory(),
            provider="alipay",
            merchant_id=f"20210000000000{n}",
            secrets_encrypted=credentials.encrypt_config({**CONFIG, "app_id": str(n)}),
        )
        for n in (1, 2)
    ]
    newest = Fernet.generate_key()
    settings.FIELD_ENCRYPTION_KEYS = [newest.decode()]
    out = io.StringIO()
    call_command("rotate_payment_secrets", stdout=out)
    assert "[1/2]" in out.getvalue() and "[2/2]" in out.getvalue()
    assert "2 of 2 merchant accounts encrypted with the first key" in out.getvalue()
    for n, row in zip((1, 2), rows, strict=True):
        row.refresh_from_db()
        # Readable with the newest key alone: the old, derived key can now be dropped.
        assert Fernet(newest).decrypt(row.secrets_encrypted.encode())
        assert credentials.decrypt_config(row.secrets_encrypted)["app_id"] == str(n)


@pytest.mark.django_db
def test_rotation_reports_an_unreadable_row_and_fails(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    broken = MerchantAccount.objects.create(
        facility=FacilityFactory(),
        provider="wechat",
        merchant_id="1900000009",
        secrets_encrypted=Fernet(Fernet.generate_key()).encrypt(b"{}").decode(),
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 merchant account"):
        call_command("rotate_payment_secrets", stdout=out)
    assert "UNREADABLE" in out.getvalue()
    assert MerchantAccount.objects.get(pk=broken.pk).secrets_encrypted == broken.secrets_encrypted


def _ids(found):
    return [message.id for message in found]


def test_production_without_the_keys_is_refused_by_a_system_check(settings):
    settings.DEBUG, settings.PAYMENTS_SANDBOX = False, False
    settings.ALLOWED_HOSTS = ["pay.example.org"]
    settings.FIELD_ENCRYPTION_KEYS = []
    assert _ids(checks.check_field_encryption_keys()) == ["payments.E001"]
    assert checks.check_field_encryption_keys_for_deploy() == []  # said once, not twice
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert checks.check_field_encryption_keys() == []


@pytest.mark.parametrize(
    ("debug", "sandbox", "hosts"),
    [
        pytest.param(True, False, ["pay.example.org"], id="debug"),
        pytest.param(False, True, ["pay.example.org"], id="sandbox, as scripts/run and the demo"),
        pytest.param(False, False, ["localhost", "127.0.0.1"], id="a checkout's defaults"),
    ],
)
def test_development_without_the_keys_falls_back_and_says_so(settings, debug, sandbox, hosts):
    settings.DEBUG, settings.PAYMENTS_SANDBOX, settings.ALLOWED_HOSTS = debug, sandbox, hosts
    settings.FIELD_ENCRYPTION_KEYS = []
    assert _ids(checks.check_field_encryption_keys()) == ["payments.W001"]
    assert credentials.decrypt_config(credentials.encrypt_config(CONFIG)) == CONFIG
    # check --deploy says it is a deployment: then the keys are required unless DEBUG is on.
    assert _ids(checks.check_field_encryption_keys_for_deploy()) == (
        [] if debug else ["payments.E001"]
    )


def test_a_key_that_is_not_a_fernet_key_is_refused(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    assert _ids(checks.check_field_encryption_keys()) == ["payments.E002"]


# --- one facility's broken account breaks only that facility ------------------------------


@pytest.fixture
def wechat(httpserver, settings):
    gateway = FakeWechatPay(httpserver)
    settings.PAYMENTS_WECHAT = gateway.account()
    settings.SITE_URL = "http://testserver"
    return gateway


def _ordered_wechat(client, wechat, facility):
    user = depositor()
    link = approved_link(user, InmateFactory(facility=facility))
    reserved, pay_url = services.start_deposit(
        depositor=user,
        link_id=link.pk,
        amount_fen=10_000,
        idempotency_key=key(),
        provider_name="wechat",
    )
    client.force_login(user)
    assert client.get(pay_url).status_code == 200
    payment = Payment.objects.get(deposit=reserved)
    return payment, wechat.trades[uuid.UUID(payment.provider_reference).hex]


def _break(row: MerchantAccount) -> None:
    """The row's keys were saved under a key this installation no longer has."""
    MerchantAccount.objects.filter(pk=row.pk).update(
        secrets_encrypted=Fernet(Fernet.generate_key()).encrypt(b"{}").decode()
    )


@pytest.mark.django_db
def test_a_broken_account_leaves_other_facilities_callbacks_and_polls_working(
    client, wechat, settings
):
    broken_facility, working_facility = FacilityFactory(), FacilityFactory()
    own = MerchantAccount.objects.create(
        facility=broken_facility,
        provider="wechat",
        merchant_id=wechat.mchid,
        secrets_encrypted=credentials.encrypt_config(wechat.account()),
    )
    stranded, stranded_trade = _ordered_wechat(client, wechat, broken_facility)
    lost, lost_trade = _ordered_wechat(client, wechat, working_facility)
    notified, notified_trade = _ordered_wechat(client, wechat, working_facility)
    _break(own)
    for trade in (stranded_trade, lost_trade, notified_trade):
        wechat.pay(trade.out_trade_no)

    # The working facility's callback is verified and credited (the broken row is skipped).
    body, headers = wechat.notification(notified_trade)
    answer = client.post(
        "/payments/wechat/callback", data=body, content_type="application/json", headers=headers
    )
    assert answer.status_code == 204
    # The broken facility's callback is refused, not a server error: WeChat Pay retries it.
    body, headers = wechat.notification(stranded_trade)
    answer = client.post(
        "/payments/wechat/callback", data=body, content_type="application/json", headers=headers
    )
    assert answer.status_code == 400

    # The poll asks about the broken facility's payment first, fails on it, and goes on.
    asked = services.poll_pending_payments(now=timezone.now() + dt.timedelta(minutes=5))
    assert asked == 2
    for payment in (stranded, lost, notified):
        payment.refresh_from_db()
    assert stranded.status == Payment.Status.PENDING
    assert (lost.status, notified.status) == (Payment.Status.SETTLED, Payment.Status.SETTLED)
    assert Account.objects.get(inmate=lost.deposit.inmate, kind="spendable").balance_fen == 10_000


@pytest.mark.django_db
def test_staff_see_the_broken_account_in_the_admin_and_on_the_dashboard(client, settings):
    facility = FacilityFactory()
    row = MerchantAccount.objects.create(
        facility=facility,
        provider="alipay",
        merchant_id="2021000000000042",
        secrets_encrypted=credentials.encrypt_config(CONFIG),
    )
    _break(row)
    client.force_login(StaffFactory(is_superuser=True))
    page = client.get("/admin/payments/merchantaccount/").content.decode()
    assert "cannot be read" in page
    assert "icon-no.svg" in page  # the "keys readable" column
    dashboard = client.get(f"/admin/reports/dashboard/?facility={facility.pk}").content.decode()
    assert "merchant-account-warning" in dashboard
    assert "2021000000000042" in dashboard
