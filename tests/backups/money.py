"""Money for the restore drill (``test_point_in_time_restore.py``), in a process of its own on
the throwaway cluster DATABASE_URL names:

- ``money.py move <tag>``: each demo inmate gets a family deposit credited, and the first buys
  at the kiosk, all through the services;
- ``money.py state``: the money as it stands (every account's balance from its entries and its
  cached balance, the journal's size, deposits by status), as JSON;
- ``money.py reconcile``: the findings of an exact reconciliation run, as JSON.
"""

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
django.setup()

from django.db import connection  # noqa: E402

from accounts.models import User  # noqa: E402
from catalog import services as catalog_services  # noqa: E402
from catalog.models import FacilityProduct  # noqa: E402
from facilities import demo  # noqa: E402
from facilities.models import Facility, Inmate, KioskDevice  # noqa: E402
from ledger import services  # noqa: E402
from ledger.reconciliation import run_checks  # noqa: E402
from payments import services as payment_services  # noqa: E402
from payments.models import Payment  # noqa: E402


def move(tag: str) -> dict:
    facility = Facility.objects.get(code=demo.FACILITY_CODE)
    family = User.objects.get(username=demo.DEPOSITOR_USERNAME)
    kiosk = KioskDevice.objects.filter(facility=facility).order_by("id").first()
    inmates = list(Inmate.objects.filter(facility=facility, status="active").order_by("pk"))
    for number, inmate in enumerate(inmates, start=1):
        deposit = services.reserve_deposit(
            inmate_id=inmate.pk,
            amount_fen=100 * number,
            idempotency_key=f"drill-{tag}-{inmate.pk}",
            idempotency_scope=services.depositor_scope(family.pk),
            depositor_id=family.pk,
        )
        payment = Payment.objects.create(
            deposit_id=deposit.pk,
            provider=deposit.provider,
            provider_reference=str(deposit.reference),
            amount_fen=deposit.amount_fen + deposit.fee_fen,
            currency=deposit.currency,
            created_at=deposit.created_at,
        )
        payment_services.apply_provider_status(payment_id=payment.pk, status="settled")
    offer = (
        FacilityProduct.objects.filter(facility=facility, stock__gt=0)
        .order_by("product__price_fen")
        .first()
    )
    catalog_services.place_order(
        inmate_id=inmates[0].pk,
        device_id=kiosk.pk,
        items=[{"product_id": offer.product_id, "quantity": 1}],
        idempotency_key=f"drill-{tag}",
    )
    return {"moved": tag}


def state() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, a.balance_fen, COALESCE(SUM(e.amount_fen), 0) FROM ledger_account a "
            "LEFT JOIN ledger_entry e ON e.account_id = a.id GROUP BY a.id ORDER BY a.id"
        )
        accounts = {str(pk): [cached, int(total)] for pk, cached, total in cursor.fetchall()}
        cursor.execute("SELECT COUNT(*) FROM ledger_transaction")
        (transactions,) = cursor.fetchone()
        cursor.execute("SELECT status, COUNT(*) FROM ledger_deposit GROUP BY status ORDER BY 1")
        deposits = dict(cursor.fetchall())
    return {"accounts": accounts, "transactions": transactions, "deposits": deposits}


def reconcile() -> dict:
    return {"findings": [finding.check for finding in run_checks(exact=True)]}


command = sys.argv[1]
answer = (
    move(sys.argv[2]) if command == "move" else {"state": state, "reconcile": reconcile}[command]()
)
print(json.dumps(answer))
