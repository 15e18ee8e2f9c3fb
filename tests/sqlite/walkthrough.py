"""The embedded default's money work, on the SQLite database that ``scripts/run`` migrated and
seeded: a deposit, a purchase, a replay, deposit expiry, rollover, reconciliation and the
monthly statements (through the Celery task functions the scheduler calls), the journal's
SQLite guards against raw SQL, and the archive command's refusal (no partitions here). Run by
``test_embedded_default.py`` in a process of its own (the suite itself runs on PostgreSQL);
prints what it saw as one JSON object on the last line. Each part runs even when an earlier one
failed, and a failure is reported under its name.
"""

import datetime as dt
import io
import json
import os
import sys
from zoneinfo import ZoneInfo

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
django.setup()

from auditlog.models import LogEntry  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.utils import timezone, translation  # noqa: E402
from django_celery_beat.models import PeriodicTask  # noqa: E402

from accounts.models import User  # noqa: E402
from catalog import services as catalog_services  # noqa: E402
from catalog.models import Category, FacilityProduct, Product  # noqa: E402
from facilities import demo  # noqa: E402
from facilities.models import Facility, Inmate, KioskDevice  # noqa: E402
from ledger import batch, services, tasks  # noqa: E402
from ledger.models import Account, Deposit, Entry, ScheduledRun, Statement, Transaction  # noqa: E402
from ledger.selectors import inmate_balance  # noqa: E402
from payments import services as payment_services  # noqa: E402
from payments.models import Payment  # noqa: E402

seen: dict = {"vendor": connection.vendor, "errors": {}}
facility = Facility.objects.get(code=demo.FACILITY_CODE)
# The two inmates with the most room left this month: the demo's own deposits (random per
# installation) can bring an inmate up to the monthly cap, where the deposits below would be
# refused.
first, second = sorted(
    Inmate.objects.filter(facility=facility, status="active"),
    key=lambda inmate: (-inmate_balance(inmate=inmate).month_remaining_fen, inmate.pk),
)[:2]
family = User.objects.get(username=demo.DEPOSITOR_USERNAME)
staff = User.objects.get(username=demo.STAFF_USERNAME)
kiosk = KioskDevice.objects.filter(facility=facility).order_by("id").first()
family_scope = services.depositor_scope(family.pk)
now = timezone.now()
month_start = dt.datetime.combine(
    facility.local_month(now), dt.time(), tzinfo=ZoneInfo(facility.timezone)
)
seen["schedules"] = sorted(PeriodicTask.objects.values_list("task", flat=True))


def step(work):
    """Run one part now; a failure is recorded under the part's name and the next part runs."""
    try:
        work()
    except Exception as failure:  # noqa: BLE001 - reported to the test, which fails on it
        seen["errors"][work.__name__] = f"{type(failure).__name__}: {failure}"
    return work


def reserve(inmate, amount_fen: int, key: str, **when) -> Deposit:
    """A family deposit reserved with its payment registered, as the deposit form does."""
    deposit = services.reserve_deposit(
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key,
        idempotency_scope=family_scope,
        depositor_id=family.pk,
        **when,
    )
    Payment.objects.create(
        deposit_id=deposit.pk,
        provider=deposit.provider,
        provider_reference=str(deposit.reference),
        amount_fen=deposit.amount_fen + deposit.fee_fen,
        currency=deposit.currency,
        created_at=deposit.created_at,
    )
    return deposit


def settle(deposit: Deposit, **when) -> None:
    """The provider reports the payment settled: the deposit is credited."""
    payment = Payment.objects.get(deposit_id=deposit.pk)
    payment_services.apply_provider_status(payment_id=payment.pk, status="settled", **when)


@step
def deposit_and_purchase():
    before = inmate_balance(inmate=first)
    reserved = reserve(first, 10_000, "walkthrough-deposit")
    seen["reservation_minutes"] = (reserved.expires_at - reserved.created_at) / dt.timedelta(
        minutes=1
    )
    settle(reserved)
    soap = Product.objects.create(
        sku="WALKTHROUGH-SOAP",
        name_zh="香皂",
        name_en="Soap",
        category=Category.objects.order_by("id").first(),
        price_fen=2_500,
    )
    FacilityProduct.objects.create(facility=facility, product=soap, stock=1)
    purchase = dict(
        inmate_id=first.pk,
        device_id=kiosk.pk,
        items=[{"product_id": soap.pk, "quantity": 1}],
        idempotency_key="walkthrough-purchase",
    )
    bought = catalog_services.place_order(**purchase)
    transactions_before_replay = Transaction.objects.count()
    seen["replay_returns_the_first"] = catalog_services.place_order(**purchase).pk == bought.pk
    seen["replay_wrote_nothing"] = Transaction.objects.count() == transactions_before_replay
    seen["spendable_moved_fen"] = inmate_balance(inmate=first).spendable_fen - before.spendable_fen
    seen["deposit_status"] = Deposit.objects.get(pk=reserved.pk).status


@step
def kiosk_order_and_refusal():
    """A kiosk order on SQLite (no sequences, no writes inside WITH: the order is inserted,
    then debited, then its answer written), its replay, and a refusal kept under its key."""
    from catalog.models import Order, RefusedOrder
    from commissary import errors

    offers = FacilityProduct.objects.filter(facility=facility, stock__gt=0).order_by(
        "product__price_fen"
    )
    cheapest, other = offers[0], offers[1]
    order = dict(
        inmate_id=first.pk,
        device_id=kiosk.pk,
        items=[{"product_id": cheapest.product_id, "quantity": 1}],
        idempotency_key="walkthrough-order",
    )
    placed = catalog_services.place_order(**order)
    stored = Order.objects.get(pk=placed.pk)
    seen["order"] = {
        "answer_kept": stored.placed_response == placed.placed_response
        and stored.placed_response["id"] == placed.pk,
        "debited": Transaction.objects.get(pk=stored.purchase_id).memo
        == f"Commissary order #{placed.pk}",
        "stock_taken": FacilityProduct.objects.get(pk=cheapest.pk).stock == cheapest.stock - 1,
        "replay_is_the_first": catalog_services.place_order(**order).pk == placed.pk,
        "orders": Order.objects.filter(idempotency_key="walkthrough-order").count(),
    }
    FacilityProduct.objects.filter(pk=other.pk).update(stock=0)
    refused = dict(order, items=[{"product_id": other.product_id, "quantity": 1}])
    refused["idempotency_key"] = "walkthrough-refused"
    codes = []
    for restock in (0, 5):  # the replay is refused as the first was, though stock came back
        FacilityProduct.objects.filter(pk=other.pk).update(stock=restock)
        try:
            catalog_services.place_order(**refused)
        except errors.DomainError as refusal:
            codes.append(refusal.code)
    seen["refusal"] = {
        "codes": codes,
        "kept": RefusedOrder.objects.filter(idempotency_key="walkthrough-refused").count(),
    }


@step
def deposit_at_the_facility_local_month_start():
    """Thirty minutes into this month, facility time: the previous day in UTC."""
    early = reserve(second, 100, "walkthrough-early", now=month_start + dt.timedelta(minutes=30))
    settle(early, now=month_start + dt.timedelta(minutes=31))


@step
def expiry_asked_in_facility_time():
    """Only the stale reservation expires, though "now" is given 8 hours ahead of UTC."""
    stale = reserve(second, 200, "walkthrough-stale", now=now - dt.timedelta(hours=3))
    fresh = reserve(second, 300, "walkthrough-fresh")
    expiry = batch.expire_stale_deposits(now=timezone.localtime(now, ZoneInfo("Asia/Shanghai")))
    seen["expired"] = expiry.counts["deposits_expired"]
    seen["stale_fresh_status"] = [Deposit.objects.get(pk=d.pk).status for d in (stale, fresh)]


def refusal(*statements) -> str | None:
    """The error that refuses these statements, run as one transaction, or None."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    except DatabaseError as refused:
        return str(refused)
    return None


@step
def raw_sql_against_the_journal():
    services.set_account_frozen(
        inmate_id=second.pk,
        is_frozen=True,
        reason="walkthrough",
        staff_id=staff.pk,
        idempotency_key="walkthrough-freeze",
    )
    fees, sales = (
        Account.objects.get(facility=facility, inmate=None, kind=kind).pk
        for kind in (Account.Kind.FEES, Account.Kind.SALES)
    )
    committed = Transaction.objects.order_by("id").first().pk
    new_transaction = (
        "INSERT INTO ledger_transaction (kind, idempotency_scope, idempotency_key, request_hash, "  # noqa: S608 - test-built raw SQL from ids and constants, to prove the guards refuse it
        "facility_id, memo, created_at) VALUES ('adjustment', 'system', '{key}', '', "
        f"{facility.pk}, 'raw', '2026-01-01 00:00:00')"
    )
    newest = "(SELECT MAX(id) FROM ledger_transaction)"
    newest_at = f"(SELECT created_at FROM ledger_transaction WHERE id = {newest})"  # noqa: S608 - constant SQL
    journal_before = (Transaction.objects.count(), Entry.objects.count())
    seen["refused"] = {
        "update_entry": refusal("UPDATE ledger_entry SET amount_fen = amount_fen + 1"),
        "delete_entry": refusal("DELETE FROM ledger_entry"),
        "update_transaction": refusal("UPDATE ledger_transaction SET memo = 'edited'"),
        "delete_transaction": refusal("DELETE FROM ledger_transaction"),
        "update_account_event": refusal("UPDATE ledger_accountevent SET reason = 'edited'"),
        "delete_account_event": refusal("DELETE FROM ledger_accountevent"),
        "empty_transaction": refusal(new_transaction.format(key="raw-empty")),
        "unbalanced_transaction": refusal(
            new_transaction.format(key="raw-unbalanced"),
            f"INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "  # noqa: S608 - test-built raw SQL from ids and constants, to prove the guards refuse it
            f"VALUES ({newest}, {fees}, 500, {newest_at}), ({newest}, {sales}, -499, {newest_at})",
        ),
        "entry_added_to_a_committed_transaction": refusal(
            f"INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "  # noqa: S608 - test-built raw SQL from ids and constants, to prove the guards refuse it
            f"VALUES ({committed}, {fees}, 1, "
            f"(SELECT created_at FROM ledger_transaction WHERE id = {committed}))"
        ),
        "balanced_transaction": refusal(
            new_transaction.format(key="raw-balanced"),
            f"INSERT INTO ledger_entry (transaction_id, account_id, amount_fen, created_at) "  # noqa: S608 - test-built raw SQL from ids and constants, to prove the guards refuse it
            f"VALUES ({newest}, {fees}, 500, {newest_at}), ({newest}, {sales}, -500, {newest_at})",
        ),
    }
    journal_after = (Transaction.objects.count(), Entry.objects.count())
    seen["journal_grew_by"] = [a - b for a, b in zip(journal_after, journal_before, strict=True)]


@step
def raw_sql_against_the_audit_trail():
    """The audit trail is append-only on SQLite too; only the actor may be cleared (a person
    deleted), nothing else with it."""
    entries = LogEntry.objects.count()
    seen["audit"] = {
        "entries": entries,
        "update": refusal("UPDATE auditlog_logentry SET object_repr = 'edited'"),
        "delete": refusal("DELETE FROM auditlog_logentry"),
        "update_with_actor_cleared": refusal(
            "UPDATE auditlog_logentry SET actor_id = NULL, object_repr = 'edited'"
        ),
        "actor_cleared": refusal("UPDATE auditlog_logentry SET actor_id = NULL"),
        "entries_after": LogEntry.objects.count(),
        "edited": LogEntry.objects.filter(object_repr="edited").count(),
    }


@step
def nothing_left_unsettled():
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM ledger_journal_unsettled")
        seen["unsettled_left"] = cursor.fetchone()[0]


@step
def rollover():
    seen["rollover"] = [
        ScheduledRun.objects.get(pk=pk).status
        for pk in tasks.roll_over_periods(timezone_name=facility.timezone)
    ]


@step
def reconciliation():
    run = ScheduledRun.objects.get(pk=tasks.reconcile_ledger())
    seen["reconciliation"] = [run.status, run.counts["findings"]]


@step
def statements():
    this_month = facility.local_month(now)
    seen["statement_runs"] = [
        ScheduledRun.objects.get(pk=pk).status
        for pk in tasks.generate_monthly_statements()  # last month's, as the schedule asks
        + tasks.generate_monthly_statements(month=this_month.isoformat())
    ]
    seen["statements_this_month"] = Statement.objects.filter(month=this_month).count()
    statement = Statement.objects.get(inmate=second, month=this_month)
    seen["statement"] = {
        "opening_fen": statement.opening_fen,
        "closing_fen": statement.closing_fen,
        "shows_the_early_deposit": f"{month_start + dt.timedelta(minutes=31):%Y-%m-%d %H:%M}"
        in statement.html,
    }
    own_entries = Entry.objects.filter(account__inmate=second)
    seen["journal"] = {
        "opening_fen": own_entries.filter(transaction__created_at__lt=month_start).aggregate(
            total=Sum("amount_fen")
        )["total"]
        or 0,
        "closing_fen": own_entries.aggregate(total=Sum("amount_fen"))["total"] or 0,
    }


entries_before_detach = Entry.objects.count()


@step
def detach_journal_month():
    # SQLite has no partitions: the archive command refuses and changes nothing. Read in
    # English: commands speak the site's language (Chinese by default).
    with translation.override("en"):
        try:
            call_command("detach_journal_month", stdout=io.StringIO())
        except CommandError as refusal:
            seen["detach_refusal"] = str(refusal)
    seen["entries_after_detach"] = Entry.objects.count()
    seen["entries_before_detach"] = entries_before_detach


@step
def work_queues():
    # Each demo role's admin home: all of its queues counted in one statement, the held
    # deposits' deadline arithmetic (a facility's days times one day) included.
    from reports.work_queue import work_queue_for  # noqa: PLC0415

    seen["work_queues"] = {
        user.username: sorted(line.key for line in work_queue_for(user, now=now))
        for user in User.objects.filter(is_staff=True, is_superuser=False).order_by("username")
    }


sys.stdout.write(json.dumps(seen) + "\n")
