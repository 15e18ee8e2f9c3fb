"""``manage.py seed_demo``: idempotent, every credential it writes works, and the money it
seeds in bulk is real journal that reconciles and obeys both caps."""

import datetime as dt
import json
import stat
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Sum

from accounts.models import User
from catalog import services as catalog_services
from catalog.models import Order
from commissary import errors
from facilities import demo
from facilities import services as facility_services
from facilities.models import Facility, HousingUnit, Inmate, KioskDevice, hash_device_key
from ledger import services as ledger_services
from ledger.models import Account, Deposit, Entry, MonthlyPeriod, Transaction
from ledger.reconciliation import run_checks
from monitoring import demo as monitoring_demo
from monitoring.models import Hold
from tests.factories import InmateFactory

SEED = "test-seed"


def seed(path, *, inmates=30, seed=SEED) -> str:
    out = StringIO()
    call_command(
        "seed_demo",
        f"--inmates={inmates}",
        f"--seed={seed}",
        f"--credentials-out={path}",
        stdout=out,
        stderr=StringIO(),
    )
    return out.getvalue()


def snapshot() -> dict:
    """Every row count the seed touches, and every inmate's money."""
    counted = (Facility, HousingUnit, Inmate, KioskDevice, User, Account, MonthlyPeriod)
    counted += (Deposit, Transaction, Entry)
    return {
        "counts": {model.__name__: model.objects.count() for model in counted},
        "balances": sorted(
            Account.objects.filter(inmate__isnull=False).values_list(
                "inmate__inmate_number", "kind", "balance_fen", "pending_fen"
            )
        ),
        "received": sorted(MonthlyPeriod.objects.values_list("inmate_id", "received_fen")),
    }


def fire_deferred_checks() -> None:
    """The foreign keys and the journal's balance triggers are checked at commit, and a test
    never commits: make them fire now (a violation raises here)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_seeding_twice_changes_nothing_the_second_time_and_rewrites_the_same_file(db, tmp_path):
    credentials = tmp_path / "demo-credentials.json"
    first_report = seed(credentials)
    first_file = credentials.read_text()
    before = snapshot()

    second_report = seed(credentials)

    assert snapshot() == before
    assert credentials.read_text() == first_file
    assert "30 inmates (30 created now)" in first_report
    assert "30 inmates (0 created now)" in second_report
    assert "(kept)" in second_report
    assert before["counts"]["Inmate"] == 30
    assert before["counts"]["Facility"] == 1


def test_credentials_file_lists_every_inmate_with_a_pin_that_signs_in(db, tmp_path):
    credentials_path = tmp_path / "creds.json"
    seed(credentials_path)
    credentials = json.loads(credentials_path.read_text())

    inmates = {inmate.inmate_number: inmate for inmate in Inmate.objects.all()}
    listed = credentials["inmates"]
    assert [entry["inmate_number"] for entry in listed] == sorted(inmates)
    assert len(listed) == 30
    for entry in listed:
        inmate = inmates[entry["inmate_number"]]
        assert inmate.check_pin(entry["pin"])
        assert not inmate.check_pin("0000")
        assert "card_token" not in entry  # one name, the API's
        assert entry["card"] == inmate.card_token
    assert credentials["admin_url"] == "/admin/"
    assert stat.S_IMODE(credentials_path.stat().st_mode) == 0o600


def test_kiosk_key_in_the_file_hashes_to_the_stored_key(db, tmp_path):
    credentials_path = tmp_path / "creds.json"
    seed(credentials_path)
    kiosk = json.loads(credentials_path.read_text())["kiosk"]

    device = KioskDevice.objects.get()
    assert device.name == kiosk["name"]
    assert device.key_hash == hash_device_key(kiosk["key"])
    assert device.is_active and device.facility.code == demo.FACILITY_CODE


def test_without_the_old_file_a_rerun_issues_a_new_kiosk_and_keeps_the_old_one(db, tmp_path):
    seed(tmp_path / "first.json")
    seed(tmp_path / "elsewhere.json")

    first_key = json.loads((tmp_path / "first.json").read_text())["kiosk"]["key"]
    second_key = json.loads((tmp_path / "elsewhere.json").read_text())["kiosk"]["key"]
    assert first_key != second_key
    assert set(KioskDevice.objects.values_list("key_hash", "is_active")) == {
        (hash_device_key(first_key), True),
        (hash_device_key(second_key), True),
    }
    assert Inmate.objects.count() == 30


def test_staff_superuser_and_family_depositor_sign_in_with_the_written_passwords(db, tmp_path):
    credentials_path = tmp_path / "creds.json"
    seed(credentials_path)
    credentials = json.loads(credentials_path.read_text())

    staff = User.objects.get(username=credentials["staff"]["username"])
    depositor = User.objects.get(username=credentials["depositor"]["username"])
    assert staff.is_staff and staff.is_superuser
    assert staff.check_password(credentials["staff"]["password"])
    assert not depositor.is_staff and not depositor.is_superuser
    assert depositor.check_password(credentials["depositor"]["password"])


def test_a_user_whose_password_changed_is_left_alone_and_written_as_null(db, tmp_path):
    credentials_path = tmp_path / "creds.json"
    seed(credentials_path)
    staff = User.objects.get(username="staff")
    staff.set_password("changed by the operator")
    staff.save()

    seed(credentials_path)

    credentials = json.loads(credentials_path.read_text())
    assert credentials["staff"]["password"] is None
    assert credentials["depositor"]["password"] is not None
    staff.refresh_from_db()
    assert staff.check_password("changed by the operator")


def test_seeded_money_is_real_balanced_journal_and_reconciles(db, tmp_path):
    seed(tmp_path / "creds.json")
    facility = Facility.objects.get(code=demo.FACILITY_CODE)
    month = facility.local_month(dt.datetime.now(dt.UTC))

    fire_deferred_checks()
    assert run_checks() == []
    # The demo's monitoring holds the watched sender's deposits for review: paid, reserved
    # under the caps, not credited, each with its hold waiting.
    held = Deposit.objects.filter(status=Deposit.Status.HELD)
    assert sorted(held.values_list("depositor__email", "amount_fen")) == sorted(
        (monitoring_demo.WATCHED_EMAIL, amount) for amount in monitoring_demo.HELD_AMOUNTS_FEN
    )
    assert Hold.objects.filter(deposit__in=held, state=Hold.State.PENDING).count() == 2
    deposits = Deposit.objects.exclude(status=Deposit.Status.HELD).select_related(
        "transaction", "period"
    )
    assert deposits.count() >= 30
    for deposit in deposits:
        assert deposit.status == Deposit.Status.CREDITED
        assert deposit.period.month == month
        assert deposit.fee_fen == facility.deposit_fee_fen(deposit.amount_fen) > 0
        assert deposit.created_at <= deposit.resolved_at
        journal = deposit.transaction
        assert journal.kind == Transaction.Kind.DEPOSIT
        assert journal.inmate_id == deposit.inmate_id
        assert sorted(journal.entries.values_list("account__kind", "amount_fen")) == sorted(
            [
                (Account.Kind.CLEARING, -(deposit.amount_fen + deposit.fee_fen)),
                (Account.Kind.SPENDABLE, deposit.amount_fen),
                (Account.Kind.FEES, deposit.fee_fen),
            ]
        )
    for period in MonthlyPeriod.objects.all():
        credited = period.deposits.filter(status=Deposit.Status.CREDITED)
        assert period.received_fen == credited.aggregate(total=Sum("amount_fen"))["total"]
        waiting = period.deposits.filter(status=Deposit.Status.HELD)
        assert period.reserved_fen == (waiting.aggregate(total=Sum("amount_fen"))["total"] or 0)
    purchases = Transaction.objects.filter(kind=Transaction.Kind.PURCHASE)
    assert purchases.exists()
    for purchase in purchases:
        kinds = dict(purchase.entries.values_list("account__kind", "amount_fen"))
        assert kinds[Account.Kind.SPENDABLE] == -kinds[Account.Kind.SALES] < 0
    for account in Account.objects.filter(inmate__isnull=False):
        total = account.entries.aggregate(total=Sum("amount_fen"))["total"] or 0
        assert account.balance_fen == total


def test_seeded_inmates_get_the_accounts_intake_opens(db, tmp_path):
    seed(tmp_path / "creds.json", inmates=3)
    intake = InmateFactory()  # a facility with the same default caps, through the services

    def shape(inmate):
        return sorted(
            Account.objects.filter(inmate=inmate).values_list(
                "kind", "provider", "currency", "pending_fen", "balance_cap_fen", "is_frozen",
                "is_closed",
            )
        )  # fmt: skip

    for inmate in Inmate.objects.filter(facility__code=demo.FACILITY_CODE):
        # a deposit held for review stays pending on the inmate's spendable account
        held = Deposit.objects.filter(inmate=inmate, status=Deposit.Status.HELD)
        held_fen = held.aggregate(total=Sum("amount_fen"))["total"] or 0
        expected = [
            (
                kind,
                provider,
                currency,
                pending + (held_fen if kind == Account.Kind.SPENDABLE else 0),
                *rest,
            )
            for kind, provider, currency, pending, *rest in shape(intake)
        ]
        assert shape(inmate) == sorted(expected)
        assert inmate.status == Inmate.Status.ACTIVE and inmate.released_at is None
        assert inmate.housing_unit.facility_id == inmate.facility_id
        assert inmate.pin_hash and inmate.card_token


def test_caps_hold_for_every_seeded_inmate(db, tmp_path):
    seed(tmp_path / "creds.json", inmates=60)
    facility = Facility.objects.get(code=demo.FACILITY_CODE)
    assert facility.monthly_cap_fen == 100_000 and facility.balance_cap_fen == 500_000

    for period in MonthlyPeriod.objects.all():
        assert period.received_fen + period.reserved_fen <= period.cap_fen == 100_000
    totals = Account.objects.filter(inmate__isnull=False).values("inmate_id")
    for row in totals.annotate(total=Sum("balance_fen"), pending=Sum("pending_fen")):
        assert 0 <= row["total"] + row["pending"] <= facility.balance_cap_fen


def test_an_existing_demo_facility_with_lower_caps_is_seeded_within_them(db, tmp_path):
    facility_services.create_facility(
        code=demo.FACILITY_CODE, name="Small", monthly_cap_fen=12_000, balance_cap_fen=8_000
    )
    seed(tmp_path / "creds.json")

    assert MonthlyPeriod.objects.exists()
    assert not MonthlyPeriod.objects.filter(received_fen__gt=8_000).exists()
    assert set(MonthlyPeriod.objects.values_list("cap_fen", flat=True)) == {12_000}
    spendable = Account.objects.filter(kind=Account.Kind.SPENDABLE)
    assert set(spendable.values_list("balance_cap_fen", flat=True)) == {8_000}
    assert not spendable.filter(balance_fen__gt=8_000).exists()
    fire_deferred_checks()
    assert run_checks() == []


def test_seeded_inmates_then_work_with_the_real_services(db, tmp_path):
    seed(tmp_path / "creds.json")
    order = Order.objects.filter(purchase__isnull=False).order_by("id").first()
    inmate_id = order.inmate_id
    period = MonthlyPeriod.objects.get(inmate_id=inmate_id)

    # The seeded purchases are real kiosk orders: the same key and items replayed through the
    # kiosk's service are the same request, and answer the seeded order.
    replayed = catalog_services.place_order(
        inmate_id=inmate_id,
        device_id=order.device_id,
        items=[
            {"product_id": item.product_id, "quantity": item.quantity} for item in order.items.all()
        ],
        idempotency_key=order.idempotency_key,
    )
    assert replayed.pk == order.pk

    # The seeded month counts against the cap: exactly the rest of it can still come in.
    remaining_fen = period.cap_fen - period.received_fen
    with pytest.raises(errors.MonthlyCapExceeded):
        ledger_services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate_id,
            amount_fen=remaining_fen + 1,
            idempotency_key="over",
        )
    deposit = ledger_services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate_id,
        amount_fen=remaining_fen,
        idempotency_key="rest",
    )
    ledger_services.credit_deposit(deposit_id=deposit.pk)
    period.refresh_from_db()
    assert period.received_fen == period.cap_fen
    fire_deferred_checks()
    assert run_checks() == []


def test_a_different_seed_over_existing_demo_inmates_is_refused(db, tmp_path):
    seed(tmp_path / "creds.json")
    before = snapshot()

    with pytest.raises(CommandError, match="another seed"):
        seed(tmp_path / "creds.json", seed="another")

    assert snapshot() == before


def test_a_larger_n_adds_only_the_missing_inmates_batch_by_batch(db):
    first = demo.seed_demo(inmate_count=10, seed=SEED, batch_size=4)
    tokens_before = dict(Inmate.objects.values_list("inmate_number", "card_token"))
    progress = []

    second = demo.seed_demo(inmate_count=23, seed=SEED, batch_size=4, on_progress=progress.append)

    assert (first.inmates_created, second.inmates_created) == (10, 13)
    assert sum(progress) == 23 and len(progress) == 6
    tokens_after = dict(Inmate.objects.values_list("inmate_number", "card_token"))
    assert {number: tokens_after[number] for number in tokens_before} == tokens_before
    assert sorted(tokens_after) == [demo.inmate_number(index) for index in range(1, 24)]
    assert [entry["pin"] for entry in demo.iter_inmate_credentials(second)][:10] == [
        entry["pin"] for entry in demo.iter_inmate_credentials(first)
    ]
    fire_deferred_checks()
    assert run_checks() == []


def test_money_falls_in_the_facility_local_month_just_after_it_began(db):
    # 00:00:30 on 1 December in Shanghai is still 30 November in UTC.
    now = dt.datetime(2026, 12, 1, 0, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    demo.seed_demo(inmate_count=12, seed=SEED, now=now)

    assert set(MonthlyPeriod.objects.values_list("month", flat=True)) == {dt.date(2026, 12, 1)}
    month_start = dt.datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    for deposit in Deposit.objects.all():
        assert month_start <= deposit.created_at <= deposit.resolved_at <= now
    assert not Transaction.objects.filter(created_at__lt=month_start).exists()
    assert not Transaction.objects.filter(created_at__gt=now).exists()
    assert run_checks(now=now) == []


@pytest.mark.django_db(transaction=True)
def test_batches_on_parallel_connections_seed_the_same_consistent_ledger(monkeypatch):
    monkeypatch.setattr(demo, "PARALLEL_BATCHES", 2)

    site = demo.seed_demo(inmate_count=17, seed=SEED, batch_size=3)

    assert site.inmates_created == Inmate.objects.count() == 17
    assert Account.objects.filter(inmate__isnull=False).count() == 34
    assert run_checks() == []  # committed for real: the deferred triggers have run too
    pins = {entry["inmate_number"]: entry["pin"] for entry in demo.iter_inmate_credentials(site)}
    for inmate in Inmate.objects.all():
        assert check_password(pins[inmate.inmate_number], inmate.pin_hash)


def test_the_seeded_purchases_are_orders_and_the_dashboard_agrees_with_the_sales_report(
    db, tmp_path, client
):
    seed(tmp_path / "creds.json", inmates=40)
    facility = Facility.objects.get(code=demo.FACILITY_CODE)
    orders = Order.objects.filter(facility=facility)
    assert orders.filter(status=Order.Status.PLACED).exists() or orders.exists()
    purchases = Transaction.objects.filter(facility=facility, kind=Transaction.Kind.PURCHASE)
    assert purchases.count() == orders.count() > 0  # every purchase is an order's
    client.force_login(User.objects.get(username=f"{facility.code}_auditor"))
    dashboard = client.get("/admin/reports/dashboard/", {"facility": facility.pk, "days": 90})
    first, last = dashboard.context["first_day"], dashboard.context["last_day"]
    report = client.get(
        "/admin/reports/sales/",
        {"facility": facility.pk, "from": first.isoformat(), "to": last.isoformat()},
    )
    sales_fen = sum(row[4] for row in report.context["raw_rows"])
    assert dashboard.context["sales_total_fen"] == sales_fen > 0
    fire_deferred_checks()
    assert run_checks() == []
