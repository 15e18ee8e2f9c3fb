"""Merchant accounts and amounts shared by the real providers: keys stored only encrypted
under a key derived from SECRET_KEY (rotatable through SECRET_KEY_FALLBACKS), the admin showing
which providers a facility has and never a secret, the deposit form offering exactly the
facility's enabled providers, and exact fen ↔ yuan conversion with no floats."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.models import Deposit
from payments import credentials
from payments.amounts import MalformedAmount, fen_to_yuan, wechat_fen, yuan_to_fen
from payments.models import MerchantAccount
from payments.providers import available_provider_names
from tests.factories import FacilityFactory, InmateFactory, StaffFactory

from .fake_gateways import KeyPair
from .helpers import approved_link, depositor

ALIPAY = {
    "app_id": "2021000000000042",
    "seller_id": "2088000000000042",
    "app_private_key": KeyPair.shared("alipay merchant").private_pem,
    "alipay_public_key": KeyPair.shared("alipay").public_pem,
    "gateway": "http://127.0.0.1:9/gateway.do",
}


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "yuan"), [(1, "0.01"), (10, "0.10"), (100, "1.00"), (12_345, "123.45"), (0, "0.00")]
)
def test_fen_and_alipay_yuan_strings_convert_exactly(fen, yuan):
    assert fen_to_yuan(fen) == yuan
    assert yuan_to_fen(yuan) == fen


@given(st.integers(min_value=0, max_value=10**15))
def test_every_fen_amount_survives_the_round_trip(fen):
    assert yuan_to_fen(fen_to_yuan(fen)) == fen


@pytest.mark.parametrize(
    "text", ["12.3", "12.345", "1e3", "12", "-1.00", "+1.00", " 1.00", "1.00 ", "01.00", "1,00", ""]
)
def test_a_yuan_string_without_exactly_two_decimals_is_refused(text):
    with pytest.raises(MalformedAmount):
        yuan_to_fen(text)


@pytest.mark.parametrize("value", [100.0, "100", True, None, -1])
def test_wechat_amount_must_be_a_json_integer(value):
    with pytest.raises(MalformedAmount):
        wechat_fen(value)


def test_fen_to_yuan_refuses_a_float():
    with pytest.raises(MalformedAmount):
        fen_to_yuan(1.5)


# --- encrypted credentials -----------------------------------------------------------------


def test_stored_secrets_are_encrypted_and_read_back(settings):
    token = credentials.encrypt_config(ALIPAY)
    assert "PRIVATE KEY" not in token and ALIPAY["app_id"] not in token
    assert credentials.decrypt_config(token) == ALIPAY


def test_secrets_survive_a_secret_key_rotation_through_the_fallbacks(settings):
    token = credentials.encrypt_config(ALIPAY)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a brand new secret key for this installation, long enough"
    with pytest.raises(credentials.CredentialsUnreadable):
        credentials.decrypt_config(token)
    settings.SECRET_KEY_FALLBACKS = [old]
    assert credentials.decrypt_config(token) == ALIPAY


@pytest.mark.django_db
def test_facility_account_replaces_the_environments_and_disabling_it_hides_the_provider(
    settings,
):
    settings.PAYMENTS_SANDBOX = False
    settings.PAYMENTS_ALIPAY = {**ALIPAY, "app_id": "2021000000000001"}
    settings.PAYMENTS_WECHAT = {}
    own, other = FacilityFactory(), FacilityFactory()
    row = MerchantAccount.objects.create(
        facility=own,
        provider="alipay",
        merchant_id=ALIPAY["app_id"],
        secrets_encrypted=credentials.encrypt_config(ALIPAY),
    )
    assert credentials.account_for_facility("alipay", own.pk).merchant_id == ALIPAY["app_id"]
    assert credentials.account_for_facility("alipay", other.pk).merchant_id == "2021000000000001"
    assert available_provider_names(own.pk) == ["alipay"]
    row.is_enabled = False
    row.save()
    assert available_provider_names(own.pk) == []
    assert available_provider_names(other.pk) == ["alipay"]


@pytest.mark.django_db
def test_admin_shows_which_providers_a_facility_has_and_never_a_secret(client):
    staff = StaffFactory(is_superuser=True)
    client.force_login(staff)
    facility = FacilityFactory()
    answer = client.post(
        "/admin/payments/merchantaccount/add/",
        {
            "facility": facility.pk,
            "provider": "alipay",
            "is_enabled": "on",
            "secrets": json.dumps(ALIPAY),
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    row = MerchantAccount.objects.get(facility=facility)
    assert row.merchant_id == ALIPAY["app_id"]
    assert credentials.decrypt_config(row.secrets_encrypted) == ALIPAY
    pages = [
        client.get("/admin/payments/merchantaccount/").content.decode(),
        client.get(f"/admin/payments/merchantaccount/{row.pk}/change/").content.decode(),
    ]
    assert ALIPAY["app_id"] in pages[0]
    for page in pages:
        assert "PRIVATE KEY" not in page
        assert "PUBLIC KEY" not in page
        assert row.secrets_encrypted not in page
    # Saving without typing the secrets again keeps them.
    client.post(
        f"/admin/payments/merchantaccount/{row.pk}/change/",
        {"facility": facility.pk, "provider": "alipay", "secrets": ""},
    )
    row.refresh_from_db()
    assert row.is_enabled is False
    assert credentials.decrypt_config(row.secrets_encrypted) == ALIPAY


@pytest.mark.django_db
def test_admin_refuses_an_account_with_missing_keys(client):
    client.force_login(StaffFactory(is_superuser=True))
    facility = FacilityFactory()
    answer = client.post(
        "/admin/payments/merchantaccount/add/",
        {"facility": facility.pk, "provider": "wechat", "secrets": '{"mchid": "1900000001"}'},
    )
    assert answer.status_code == 200
    assert "apiv3_key" in answer.content.decode()
    assert not MerchantAccount.objects.exists()


# --- the deposit form ------------------------------------------------------------------------


@pytest.mark.django_db
def test_deposit_form_offers_the_facilitys_enabled_providers(client, settings):
    settings.PAYMENTS_SANDBOX = False
    settings.PAYMENTS_ALIPAY = ALIPAY
    settings.PAYMENTS_WECHAT = {}
    facility = FacilityFactory()
    user = depositor()
    link = approved_link(user, InmateFactory(facility=facility))
    client.force_login(user)
    page = client.post(
        f"/family/links/{link.pk}/deposit", {"amount": "100"}, headers={"accept-language": "en"}
    ).content.decode()
    assert 'value="alipay"' in page
    assert 'value="wechat"' not in page and 'value="sandbox"' not in page
    # A provider the facility does not offer is refused and reserves nothing.
    refused = client.post(
        f"/family/links/{link.pk}/deposit/confirm",
        {
            "amount_fen": 10_000,
            "idempotency_key": "6f0c35b8-8f4c-4a39-9a0c-6e9e5b7c7d99",
            "provider": "sandbox",
        },
    )
    assert refused.status_code == 302
    assert not Deposit.objects.exists()
    chosen = client.post(
        f"/family/links/{link.pk}/deposit/confirm",
        {
            "amount_fen": 10_000,
            "idempotency_key": "6f0c35b8-8f4c-4a39-9a0c-6e9e5b7c7d98",
            "provider": "alipay",
        },
    )
    reserved = Deposit.objects.get()
    assert reserved.provider == "alipay"
    assert chosen["Location"] == f"/payments/alipay/pay/{reserved.reference}"
