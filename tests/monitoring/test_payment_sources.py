"""Rules on the payment source: the payer the provider names (kept as a keyed hash), checked
between reserve and credit. Each rule fires at its threshold and not one below, through the
sandbox's signed callback (one fake payer per depositor unless a test shares one), and over
whole facility-local days across midnight; a deposit whose provider named no payer fires none."""

import datetime as dt

import pytest

from accounts.roles import SECURITY_OFFICER, assign_role
from ledger.models import Deposit
from monitoring.models import AutoAccept, Hold, Rule, RuleVersion
from payments import payers
from payments import services as payments
from payments.models import Payment
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import SHANGHAI
from tests.payments.helpers import callback_body, depositor, post_callback

from .helpers import paid, rule_at, started

pytestmark = pytest.mark.django_db

SHARED_CARD = "sandbox-shared-account"


@pytest.fixture
def facility():
    return FacilityFactory()


def status_of(payment) -> str:
    return Deposit.objects.get(pk=payment.deposit_id).status


def test_the_callback_keeps_the_sandbox_payer_as_a_keyed_hash_only(client, facility):
    family = depositor()
    payment = paid(client, InmateFactory(facility=facility), 10_000, user=family)
    assert payment.payer_fingerprint == payers.fingerprint("sandbox", f"sandbox-payer-{family.pk}")
    assert payment.payer_label.endswith(str(family.pk)[-2:]) and "****" in payment.payer_label
    assert f"sandbox-payer-{family.pk}" not in str(Payment.objects.filter(pk=payment.pk).values())


def test_the_first_payer_named_stays_when_a_replay_names_another(client, facility):
    payment = paid(client, InmateFactory(facility=facility), 10_000, payer_id="first-payer")
    replay = callback_body(payment, payer_id="second-payer")
    assert post_callback(client, replay).status_code == 200
    payment.refresh_from_db()
    assert payment.payer_fingerprint == payers.fingerprint("sandbox", "first-payer")


def test_the_fingerprint_is_keyed_and_kept_apart_per_provider(settings):
    settings.PAYER_HASH_KEY = "one key"
    first = payers.fingerprint("alipay", "2088102177846875")
    assert first == payers.fingerprint("alipay", " 2088102177846875 ")
    assert first != payers.fingerprint("wechat", "2088102177846875")
    settings.PAYER_HASH_KEY = "another key"
    assert first != payers.fingerprint("alipay", "2088102177846875")


def test_a_monitored_payment_source_holds_what_it_pays_and_nothing_else(client, facility):
    rule = rule_at(
        facility,
        Rule.Kind.MONITORED_SOURCE,
        payer_fingerprint=payers.fingerprint("sandbox", SHARED_CARD),
        payer_label="sand****ount",
    )
    inmate = InmateFactory(facility=facility)
    held = paid(client, inmate, 10_000, payer_id=SHARED_CARD)
    assert status_of(held) == Deposit.Status.HELD
    hold = Hold.objects.get(deposit_id=held.deposit_id)
    assert [(v.rule_id, v.version) for v in hold.fired.all()] == [(rule.pk, 1)]
    assert status_of(paid(client, inmate, 10_000)) == Deposit.Status.CREDITED
    # The same id at another provider is another payer.
    rule.payer_fingerprint = payers.fingerprint("alipay", SHARED_CARD)
    rule.save()
    assert status_of(paid(client, inmate, 10_000, payer_id=SHARED_CARD)) == Deposit.Status.CREDITED


def test_one_payer_for_more_than_n_inmates_in_d_days(client, facility):
    rule_at(facility, Rule.Kind.INMATES_FROM_SOURCE, count=2, days=1)
    a, b, c = (InmateFactory(facility=facility) for _ in range(3))
    # Two families, one payer: it is the source that counts, not the depositor.
    assert status_of(paid(client, a, 100, payer_id=SHARED_CARD)) == Deposit.Status.CREDITED
    assert status_of(paid(client, a, 100, payer_id=SHARED_CARD)) == Deposit.Status.CREDITED
    assert status_of(paid(client, b, 100, payer_id=SHARED_CARD)) == Deposit.Status.CREDITED
    assert status_of(paid(client, c, 100, payer_id=SHARED_CARD)) == Deposit.Status.HELD
    assert status_of(paid(client, c, 100)) == Deposit.Status.CREDITED  # another payer


def test_several_depositors_sharing_one_payer_account(client, facility):
    rule_at(facility, Rule.Kind.DEPOSITORS_FROM_SOURCE, count=2, days=1)
    inmate = InmateFactory(facility=facility)
    first, second, third = depositor(), depositor(), depositor()
    for family in (first, first, second, second):
        payment = paid(client, inmate, 100, user=family, payer_id=SHARED_CARD)
        assert status_of(payment) == Deposit.Status.CREDITED  # at most two depositors
    held = paid(client, inmate, 100, user=third, payer_id=SHARED_CARD)
    assert status_of(held) == Deposit.Status.HELD
    assert status_of(paid(client, inmate, 100, user=third)) == Deposit.Status.CREDITED


def test_more_than_n_sources_to_one_inmate_in_d_days(client, facility):
    rule_at(facility, Rule.Kind.SOURCES_TO_INMATE, count=2, days=1)
    inmate = InmateFactory(facility=facility)
    family = depositor()
    assert status_of(paid(client, inmate, 100, user=family, payer_id="card-1")) == "credited"
    assert status_of(paid(client, inmate, 100, user=family, payer_id="card-2")) == "credited"
    assert status_of(paid(client, inmate, 100, user=family, payer_id="card-1")) == "credited"
    assert status_of(paid(client, inmate, 100, user=family, payer_id="card-3")) == "held"


def _settled_at(inmate, family, payer_id, now):
    """A deposit started and settled at ``now`` through the provider's answer naming
    ``payer_id``."""
    payment = started(inmate, 100, user=family)
    payment.deposit.created_at = now  # started just before it was paid
    Deposit.objects.filter(pk=payment.deposit_id).update(created_at=now)
    payments.apply_provider_status(
        payment_id=payment.pk,
        status="settled",
        payer=payers.Payer(provider_id=payer_id, label="card"),
        now=now,
    )
    return status_of(payment)


def test_more_than_n_deposits_from_one_source_counts_whole_local_days(facility):
    rule_at(facility, Rule.Kind.DEPOSITS_FROM_SOURCE, count=2, days=2)
    inmate = InmateFactory(facility=facility)
    family = depositor()
    # 23:59 on the 8th in Shanghai is outside a two-day window ending on the 10th; 00:00 on
    # the 9th (16:00 UTC on the 8th) is inside.
    assert _settled_at(inmate, family, "card", dt.datetime(2026, 6, 8, 23, 59, tzinfo=SHANGHAI))
    assert _settled_at(inmate, family, "card", dt.datetime(2026, 6, 9, 0, 0, tzinfo=SHANGHAI))
    now = dt.datetime(2026, 6, 10, 9, 0, tzinfo=SHANGHAI)
    assert _settled_at(inmate, family, "card", now) == Deposit.Status.CREDITED  # the second
    assert _settled_at(inmate, family, "other", now) == Deposit.Status.CREDITED
    assert _settled_at(inmate, family, "card", now) == Deposit.Status.HELD  # the third


def test_a_deposit_whose_provider_named_no_payer_fires_no_source_rule(client, facility):
    rule_at(facility, Rule.Kind.DEPOSITS_FROM_SOURCE, count=0, days=1)
    inmate = InmateFactory(facility=facility)
    payment = paid(client, inmate, 100, payer_id="")
    assert (status_of(payment), payment.payer_fingerprint) == (Deposit.Status.CREDITED, "")
    assert status_of(paid(client, inmate, 100)) == Deposit.Status.HELD


def test_the_rule_form_keeps_only_the_keyed_hash_of_a_typed_payer_id(client, facility):
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, SECURITY_OFFICER)
    client.force_login(officer)
    form = {
        "facility": facility.pk,
        "kind": Rule.Kind.MONITORED_SOURCE,
        "note": "",
        "is_active": "on",
        "payer_provider": "sandbox",
        "payer_id": "",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
    }
    refused = client.post("/admin/monitoring/rule/add/", form)
    assert refused.status_code == 200 and not Rule.objects.exists()  # a payer id is needed
    saved = client.post("/admin/monitoring/rule/add/", {**form, "payer_id": SHARED_CARD})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    rule = Rule.objects.get()
    assert rule.payer_fingerprint == payers.fingerprint("sandbox", SHARED_CARD)
    assert rule.payer_label == "sand****ount"
    version = RuleVersion.objects.get(rule=rule)
    assert version.parameters["payer_fingerprint"] == rule.payer_fingerprint
    assert SHARED_CARD not in str(version.parameters) + str(Rule.objects.values().get())
    # The rule fires on what that payer pays.
    client.logout()
    held = paid(client, InmateFactory(facility=facility), 100, payer_id=SHARED_CARD)
    assert status_of(held) == Deposit.Status.HELD


def test_the_review_page_shows_the_source_and_its_other_depositors_in_the_officers_facilities(
    client, facility
):
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, SECURITY_OFFICER)
    inmate = InmateFactory(facility=facility)
    sharer, stranger = depositor("sharer@example.com"), depositor("stranger@example.com")
    paid(client, InmateFactory(facility=facility), 30_000, user=sharer, payer_id=SHARED_CARD)
    elsewhere = InmateFactory(facility=FacilityFactory())
    paid(client, elsewhere, 40_000, user=stranger, payer_id=SHARED_CARD)
    rule_at(facility, Rule.Kind.DEPOSITORS_FROM_SOURCE, count=1, days=1)
    held = paid(client, inmate, 10_000, payer_id=SHARED_CARD)
    hold = Hold.objects.get(deposit_id=held.deposit_id)
    client.force_login(officer)
    page = client.get(f"/admin/monitoring/hold/{hold.pk}/change/").content.decode()
    assert "sand****ount" in page
    assert "sharer@example.com" in page and "¥300.00" in page
    assert "stranger@example.com" not in page  # paid at a facility the officer does not see


def test_an_auto_accepted_source_and_inmate_pair_skips_the_rules_for_that_pair_only(
    client, facility
):
    rule_at(facility, Rule.Kind.AMOUNT_AT_LEAST, amount_fen=10_000)
    inmate, other = InmateFactory(facility=facility), InmateFactory(facility=facility)
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, SECURITY_OFFICER)
    client.force_login(officer)
    form = {
        "facility": facility.pk,
        "depositor": "",
        "payer_provider": "sandbox",
        "payer_id": SHARED_CARD,
        "inmate": inmate.pk,
        "reason": "the mother's card, checked in person",
        "is_active": "on",
    }
    both = client.post("/admin/monitoring/autoaccept/add/", {**form, "depositor": depositor().pk})
    assert both.status_code == 200 and not AutoAccept.objects.exists()  # one of the two
    saved = client.post("/admin/monitoring/autoaccept/add/", form)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    pair = AutoAccept.objects.get()
    assert (pair.depositor_id, pair.payer_fingerprint) == (
        None,
        payers.fingerprint("sandbox", SHARED_CARD),
    )
    client.logout()
    assert status_of(paid(client, inmate, 10_000, payer_id=SHARED_CARD)) == Deposit.Status.CREDITED
    assert status_of(paid(client, inmate, 10_000)) == Deposit.Status.HELD  # another source
    assert status_of(paid(client, other, 10_000, payer_id=SHARED_CARD)) == Deposit.Status.HELD
    pair.is_active = False
    pair.save()
    assert status_of(paid(client, inmate, 10_000, payer_id=SHARED_CARD)) == Deposit.Status.HELD
