"""The payer as the provider returned them (masked account, the name where one was returned) is
shown to security officers on the hold page, with the depositor's other payment sources; it is
the depositor's own in their data export (never the keyed hash, the rule or staff notes); the
name is blanked after the retention period while the payment stays; the payments screen does
not show the name."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from monitoring import services
from monitoring.models import Hold, Rule
from payments import payers
from payments.models import Payment
from tests.factories import StaffFactory

from .helpers import paid, rule_at

pytestmark = pytest.mark.django_db

Kind = Rule.Kind
SHARED_CARD = "sandbox-shared-account"


def test_the_hold_page_shows_the_payer_as_the_provider_returned_them(
    client, inmate, family, officer
):
    rule_at(inmate.facility, Kind.NOT_WHOLE_YUAN)
    earlier = paid(client, inmate, 10_000, user=family, payer_id=SHARED_CARD)
    held = paid(client, inmate, 5_050, user=family, payer_id=SHARED_CARD)
    Payment.objects.filter(pk__in=[earlier.pk, held.pk]).update(payer_name="张三")
    own_card = paid(client, inmate, 10_000, user=family)
    hold = Hold.objects.get(deposit_id=held.deposit_id)
    client.force_login(officer)
    page = client.get(f"/admin/monitoring/hold/{hold.pk}/change/", HTTP_ACCEPT_LANGUAGE="en")
    page = page.content.decode()
    assert "sand****ount · 张三" in page  # this deposit's source
    assert "The depositor&#x27;s payment sources" in page
    assert "Sandbox · sand****ount · 张三 · 2 deposits" in page  # the shared card, twice
    assert own_card.payer_label in page  # and their own card
    assert SHARED_CARD not in page


def test_the_export_has_the_depositors_own_payer_data_and_the_purge_blanks_the_name(
    client, inmate, family, officer, settings
):
    from family.services import depositor_data

    settings.MONITORING_RETENTION_DAYS = 30
    rule_at(inmate.facility, Kind.MONITORED_INMATE, inmate=inmate, note="secret note")
    payment = paid(client, inmate, 10_000, user=family, payer_id=SHARED_CARD)
    Payment.objects.filter(pk=payment.pk).update(payer_name="张三")
    services.reject_hold(
        hold_id=Hold.objects.get().pk, staff=officer, reasons=["other"], text="staff note"
    )
    data = depositor_data(depositor=family)
    assert [d["paid_by"] for d in data["deposits"]] == [{"account": "sand****ount", "name": "张三"}]
    exported = str(data)
    assert payers.fingerprint("sandbox", SHARED_CARD) not in exported
    assert "secret note" not in exported and "staff note" not in exported
    assert Kind.MONITORED_INMATE not in exported

    later = timezone.now() + dt.timedelta(days=31)
    assert services.purgeable(now=later)["payer_names"].count() == 1
    call_command("purge_monitoring_data", "--dry-run")
    assert Payment.objects.get(pk=payment.pk).payer_name == "张三"  # a dry run keeps it
    counts = services.purge_monitoring_data(now=later)
    assert counts["payer_names"] == 1
    kept = Payment.objects.get(pk=payment.pk)
    # The money record stays, with the keyed hash and the masked account; the name goes.
    assert (kept.payer_name, kept.payer_label) == ("", "sand****ount")
    assert kept.payer_fingerprint == payers.fingerprint("sandbox", SHARED_CARD)
    assert depositor_data(depositor=family)["deposits"][0]["paid_by"] == {
        "account": "sand****ount",
        "name": "",
    }


def test_the_payers_name_is_not_on_the_payment_admin_page(client, inmate, family):
    payment = paid(client, inmate, 10_000, user=family)
    Payment.objects.filter(pk=payment.pk).update(payer_name="张三")
    client.force_login(StaffFactory(facilities=[inmate.facility], is_superuser=True))
    page = client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert page.status_code == 200
    assert payment.payer_label in page.content.decode() and "张三" not in page.content.decode()
