"""What the application does with a real streaming replica, run by ``test_read_replica.py`` in
a process of its own: DATABASE_URL is a throwaway primary, DATABASE_REPLICA_URL its standby,
both migrated and seeded with the demo. ``scenarios.py running`` works while the standby
streams (its replay paused and resumed here, through the standby's own functions);
``scenarios.py stopped`` after the test stopped the standby. Prints what it saw as one JSON
object on the last line; a part that fails is reported under its name and the next one runs.
"""

import json
import logging
import os
import sys
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import DEFAULT_DB_ALIAS, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import User  # noqa: E402
from catalog import services as catalog_services  # noqa: E402
from catalog.models import FacilityProduct  # noqa: E402
from commissary import replica  # noqa: E402
from facilities import demo  # noqa: E402
from facilities.models import Facility, Inmate, KioskDevice  # noqa: E402
from ledger import batch, services  # noqa: E402
from ledger.models import Account  # noqa: E402
from ledger.selectors import inmate_balance  # noqa: E402
from payments import services as payment_services  # noqa: E402
from payments.models import Payment  # noqa: E402

REPLICA = replica.REPLICA_DB_ALIAS
seen: dict = {"errors": {}}
facility = Facility.objects.get(code=demo.FACILITY_CODE)
staff = User.objects.get(username=demo.STAFF_USERNAME)
family = User.objects.get(username=demo.DEPOSITOR_USERNAME)
kiosk = KioskDevice.objects.filter(facility=facility).order_by("id").first()
inmate = max(
    Inmate.objects.filter(facility=facility, status="active").order_by("pk"),
    key=lambda candidate: inmate_balance(inmate=candidate).month_remaining_fen,
)
browser = Client()
browser.force_login(staff)
report_csv = f"/admin/reports/deposits/?facility={facility.pk}&format=csv"
dashboard = f"/admin/reports/dashboard/?facility={facility.pk}"
deposit_export = "/admin/ledger/deposit/export/"


class Remembered(logging.Handler):
    """Keeps what commissary.replica logs."""

    messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


logging.getLogger("commissary.replica").addHandler(Remembered())
logging.getLogger("commissary.replica").setLevel(logging.INFO)


def step(work):
    try:
        work()
    except Exception as failure:  # noqa: BLE001 - reported to the test, which fails on it
        seen["errors"][work.__name__] = f"{type(failure).__name__}: {failure}"
    return work


def on_replica(sql: str):
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()


def wait_for_replay(timeout: float = 60) -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (lsn,) = cursor.fetchone()
    deadline = time.monotonic() + timeout
    while not on_replica(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn")[0]:  # noqa: S608 - an LSN the primary gave
        if time.monotonic() > deadline:
            raise TimeoutError("the standby never caught up")
        time.sleep(0.1)


def ledger_reads(queries) -> int:
    """Statements among ``queries`` that read the money tables."""
    return sum(
        1
        for query in queries
        if "ledger_" in query["sql"] and "pg_is_in_recovery" not in query["sql"]
    )


class Stopped:
    """Stands in for counting a stopped replica's statements (counting would connect)."""

    captured_queries: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def counting_replica(is_up: bool):
    return CaptureQueriesContext(connections[REPLICA]) if is_up else Stopped()


def read(path: str, *, replica_is_up: bool = True) -> dict:
    """GET ``path`` as the staff member; its status, its body, and the money-table reads each
    connection made (the replica's lag check left out)."""
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
        counting_replica(replica_is_up) as on_the_replica,
    ):
        response = browser.get(path)
    return {
        "status": response.status_code,
        "body": response.content.decode("utf-8-sig"),
        "primary_ledger_reads": ledger_reads(on_primary.captured_queries),
        "replica_ledger_reads": ledger_reads(on_the_replica.captured_queries),
    }


def credited_deposit(amount_fen: int) -> str:
    """A family deposit reserved, paid and credited (money decided on the primary)."""
    deposit = services.reserve_deposit(
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=f"replica-{uuid.uuid4()}",
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
    return str(deposit.reference)


def money_work(*, replica_is_up: bool = True) -> dict:
    """A deposit and a kiosk order, as the payment callback and the kiosk make them (outside
    any block of reads that can wait), with the replica's statements counted."""
    before = inmate_balance(inmate=inmate).spendable_fen
    offer = (
        FacilityProduct.objects.filter(facility=facility, stock__gt=0)
        .order_by("product__price_fen")
        .first()
    )
    with counting_replica(replica_is_up) as on_the_replica:
        credited_deposit(5_000)
        order = catalog_services.place_order(
            inmate_id=inmate.pk,
            device_id=kiosk.pk,
            items=[{"product_id": offer.product_id, "quantity": 1}],
            idempotency_key=f"replica-{uuid.uuid4()}",
        )
    after = inmate_balance(inmate=inmate).spendable_fen
    return {
        "spendable_moved_fen": after - before,
        "expected_fen": 5_000 - order.total_fen,
        "replica_ledger_reads": ledger_reads(on_the_replica.captured_queries),
    }


def reconcile() -> list[str]:
    run = batch.reconcile_ledger(trigger="manual")
    return sorted(run.findings.values_list("check_name", flat=True))


def running():
    @step
    def reports_read_the_replica():
        settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 3600
        wait_for_replay()
        before = read(report_csv)
        on_replica("SELECT pg_wal_replay_pause()")
        reference = credited_deposit(7_700)
        while_paused = read(report_csv)
        dashboard_paused = read(dashboard)
        export_paused = read(deposit_export)
        on_replica("SELECT pg_wal_replay_resume()")
        wait_for_replay()
        after = read(report_csv)
        export_after = read(deposit_export)
        seen["reports"] = {
            "reference": reference,
            "before": before,
            "while_paused": while_paused,
            "dashboard_paused": dashboard_paused,
            "after": after,
            "export_paused": export_paused,
            "export_after": export_after,
        }

    @step
    def money_never_reads_the_replica():
        on_replica("SELECT pg_wal_replay_pause()")
        seen["money_while_replay_paused"] = money_work()

    @step
    def lag_above_the_limit_falls_back():
        # Replay is still paused and the primary has written since: the lag grows.
        settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 1
        time.sleep(1.5)
        Remembered.messages.clear()
        seen["lagging"] = {
            "dashboard": read(dashboard),
            "report": read(report_csv),
            "readyz": browser.get("/readyz").json(),
            "logged": list(Remembered.messages),
        }
        on_replica("SELECT pg_wal_replay_resume()")
        wait_for_replay()
        settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 3600
        seen["caught_up_readyz"] = browser.get("/readyz").json()

    @step
    def reconciliation_confirms_on_the_primary():
        held = Account.objects.filter(inmate=inmate, kind=Account.Kind.HELD).get()
        nudge = "UPDATE ledger_account SET balance_fen = balance_fen + %s WHERE id = %s"
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(nudge, [1, held.pk])
        wait_for_replay()
        both_see_it = reconcile()
        # The replica keeps the corruption, the primary puts it right: the replica's finding
        # is not confirmed, so nothing is reported.
        on_replica("SELECT pg_wal_replay_pause()")
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute(nudge, [-1, held.pk])
        only_the_replica_sees_it = reconcile()
        on_replica("SELECT pg_wal_replay_resume()")
        wait_for_replay()
        seen["reconciliation"] = {
            "both_see_it": both_see_it,
            "only_the_replica_sees_it": only_the_replica_sees_it,
            "clean": reconcile(),
        }


def stopped():
    @step
    def a_stopped_replica_degrades_to_the_primary():
        Remembered.messages.clear()
        reference = credited_deposit(3_300)
        seen["stopped"] = {
            "reference": reference,
            "dashboard": read(dashboard, replica_is_up=False),
            "report": read(report_csv, replica_is_up=False),
            "readyz": browser.get("/readyz").json(),
            "money": money_work(replica_is_up=False),
            "reconciliation": reconcile(),
            "logged": list(Remembered.messages),
        }


{"running": running, "stopped": stopped}[sys.argv[1]]()
print(json.dumps(seen, default=str))
