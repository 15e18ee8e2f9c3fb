"""Facilities created before the real providers existed get their Alipay and WeChat Pay
clearing accounts (new facilities get them from ``ledger.services.open_facility_accounts``)."""

from django.db import migrations

PROVIDERS = ("alipay", "wechat")


def open_clearing_accounts(apps, schema_editor):
    Facility = apps.get_model("facilities", "Facility")
    Account = apps.get_model("ledger", "Account")
    for facility in Facility.objects.all():
        for provider in PROVIDERS:
            Account.objects.get_or_create(
                facility=facility,
                inmate=None,
                kind="clearing",
                provider=provider,
                defaults={"currency": facility.currency, "balance_fen": None},
            )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_merchant_accounts_and_checkouts"),
        ("ledger", "0005_deposit_refunded_status"),
    ]

    operations = [migrations.RunPython(open_clearing_accounts, migrations.RunPython.noop)]
