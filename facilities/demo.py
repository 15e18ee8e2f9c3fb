"""Demo data: a facility whose inmates have real money in the journal, for trying the system
out and for loading it with a realistic number of rows (``manage.py seed_demo``).

Everything is seeded idempotently and deterministically from one seed: inmate numbers, PINs,
names and the money plan follow from the seed and the inmate's index, so a second run finds
what the first made and creates nothing, and can still say every inmate's PIN.

Inmates and their money are written in bulk, a batch of inmates per database transaction:
the rows ``intake_inmate`` + ``open_inmate_accounts`` + ``reserve_deposit`` +
``credit_deposit`` + ``debit_purchase`` would write, computed in Python and inserted with
PostgreSQL's COPY (``executemany`` on SQLite), their ids drawn from the tables' own sequences
first so the rows can refer to each other. Calling the services one inmate at a time costs
about a millisecond a call, minutes for a hundred thousand inmates. So this module guards the
same invariants the services do, by construction: each transaction's entries sum to zero (1);
each cached balance is the sum of its entries, written in the same database transaction (2);
no plan takes spendable money over the balance cap (3) or a month's credited deposits over the
monthly cap (4); every credited deposit has its journal transaction and its period counts it
(8). ``ledger.reconciliation.run_checks()`` comes back empty after a seed, and the database's
CHECKs and triggers refuse anything else at commit.
"""

import base64
import datetime as dt
import functools
import hashlib
import hmac
import os
import re
import secrets
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import FacilityAssignment
from ledger.models import Account, Deposit, Entry, MonthlyPeriod, Transaction
from ledger.services import DEPOSIT_RESERVATION_TTL, SYSTEM_SCOPE

# The services' own request hash, so that replaying a seeded key through the real service is
# recognised as the same request (invariant 6).
from ledger.services import request_hash_of as request_hash

from . import services as facility_services
from .models import Facility, HousingUnit, Inmate, KioskDevice, hash_device_key

FACILITY_CODE = "demo"
FACILITY_NAME = "Demo Prison 示范监狱"
# Caps at their defaults; a 1% deposit fee so that the fees account moves too.
FACILITY_POLICY = {"timezone": "Asia/Shanghai", "currency": "CNY", "deposit_fee_rate_bp": 100}
HOUSING_UNIT_NAMES = ("Block A", "Block B", "Block C", "Block D")
KIOSK_NAME = "Demo kiosk"
STAFF_USERNAME = "staff"
DEPOSITOR_USERNAME = "family"
PROVIDER = "sandbox"

# PBKDF2 at Django's strength costs about 0.3 s a PIN: a hundred thousand distinct PINs would
# take hours. Demo inmates share a small pool of distinct PINs, hashed once and handed out
# round-robin. A demo-only shortcut: real intake hashes every PIN with its own salt.
PIN_POOL_SIZE = 16
BATCH_SIZE = 5_000
# One more connection than cores, so that one batch's Python work overlaps the others'
# database work.
PARALLEL_BATCHES = min(4, (os.cpu_count() or 1) + 1)

INMATE_NUMBER_WIDTH = 7
_INMATE_NUMBER = re.compile(rf"D(\d{{{INMATE_NUMBER_WIDTH}}})")

DEPOSIT_AMOUNTS_FEN = (5_000, 10_000, 20_000, 30_000, 50_000)
PURCHASE_ITEMS = ("Instant noodles", "Toothpaste", "Writing paper", "Soap", "Milk powder")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭"
GIVEN_NAME_CHARACTERS = "伟芳娜敏静丽强磊军洋勇艳杰涛明超"


class DemoSeedMismatch(Exception):
    """The demo inmates were seeded from another seed: their PINs cannot be recomputed."""


def inmate_number(index: int) -> str:
    return f"D{index:0{INMATE_NUMBER_WIDTH}d}"


def pin_slot(index: int) -> int:
    """Which PIN of the pool the inmate numbered ``index`` has."""
    return (index - 1) % PIN_POOL_SIZE


def default_seed() -> str:
    """A seed of this installation's own (from its SECRET_KEY): re-runs agree with each other,
    and another installation's demo credentials differ from these."""
    return hmac.new(settings.SECRET_KEY.encode(), b"seed_demo", hashlib.sha256).hexdigest()[:16]


class DemoSecrets:
    """Everything secret or arbitrary in the demo, derived from the seed with a keyed hash:
    deterministic, and unpredictable without the seed."""

    def __init__(self, seed: str):
        self._key = hashlib.sha256(seed.encode()).digest()

    def derive(self, label: str, size: int = 16) -> bytes:
        return hashlib.blake2b(label.encode(), key=self._key, digest_size=size).digest()

    def password(self, username: str) -> str:
        return base64.urlsafe_b64encode(self.derive(f"password:{username}", 12)).decode()

    def pin_pool(self) -> list[str]:
        pins: list[str] = []
        counter = 0
        while len(pins) < PIN_POOL_SIZE:
            number = int.from_bytes(self.derive(f"pin:{counter}", 8)) % 1_000_000
            counter += 1
            if f"{number:06d}" not in pins:
                pins.append(f"{number:06d}")
        return pins


# --- the plan: what one inmate gets --------------------------------------------------------


@dataclass(frozen=True)
class PlannedDeposit:
    amount_fen: int
    fee_fen: int
    created_at: dt.datetime
    credited_at: dt.datetime


@dataclass(frozen=True)
class PlannedPurchase:
    amount_fen: int
    memo: str
    created_at: dt.datetime


@dataclass(frozen=True)
class InmatePlan:
    index: int
    surname: str
    given_name: str
    admitted_at: dt.datetime
    deposits: tuple[PlannedDeposit, ...]
    purchases: tuple[PlannedPurchase, ...]

    @property
    def received_fen(self) -> int:
        return sum(deposit.amount_fen for deposit in self.deposits)

    @property
    def spendable_fen(self) -> int:
        return self.received_fen - sum(purchase.amount_fen for purchase in self.purchases)


def plan_inmate(
    index: int, *, demo_secrets: DemoSecrets, facility: Facility, now: dt.datetime
) -> InmatePlan:
    """One credited deposit in the current facility-local month (two for one inmate in four),
    then none, one or two purchases, all between the month's first instant and ``now``.
    Deposits stop where the next one would break either cap, so the plan obeys invariants 3
    and 4 whatever the caps are."""
    # One keyed hash per inmate; each decision reads its own bytes of it: 0-2 deposits,
    # 3-7 purchases, 8-11 when things happen, 12-15 name, 16-17 admission.
    draw = demo_secrets.derive(f"inmate:{index}", 18)
    month_start = dt.datetime.combine(
        facility.local_month(now), dt.time(), tzinfo=ZoneInfo(facility.timezone)
    )
    room_fen = min(facility.monthly_cap_fen, facility.balance_cap_fen)
    amounts = [DEPOSIT_AMOUNTS_FEN[draw[1] % len(DEPOSIT_AMOUNTS_FEN)]]
    if draw[0] % 4 == 0:
        amounts.append(DEPOSIT_AMOUNTS_FEN[draw[2] % len(DEPOSIT_AMOUNTS_FEN)])
    received_fen = 0
    deposit_amounts = []
    for amount_fen in amounts:
        if received_fen + amount_fen > room_fen:
            break
        received_fen += amount_fen
        deposit_amounts.append(amount_fen)
    purchase_count = max(0, draw[3] % 4 - 1) if deposit_amounts else 0  # 0, 0, 1 or 2

    # Events spread over the month so far, in order: deposits first, then purchases, each in
    # its own slot so that a deposit is credited before the next event starts.
    span = now - month_start
    slot = span / (len(deposit_amounts) + purchase_count + 1)
    event_times = [
        month_start + slot * position + slot * (draw[8 + position] / 512)  # in its first half
        for position in range(len(deposit_amounts) + purchase_count)
    ]
    payment_time = min(dt.timedelta(minutes=2), slot / 4)
    deposits = tuple(
        PlannedDeposit(
            amount_fen=amount_fen,
            fee_fen=facility.deposit_fee_fen(amount_fen),
            created_at=created_at,
            credited_at=created_at + payment_time,
        )
        for amount_fen, created_at in zip(deposit_amounts, event_times, strict=False)
    )
    spendable_fen = received_fen
    purchases = []
    for position in range(purchase_count):
        share_percent = 5 + draw[4 + position] % 26  # 5% to 30% of what is left
        amount_fen = max(100, spendable_fen * share_percent // 100 // 10 * 10)
        if amount_fen > spendable_fen:
            break
        spendable_fen -= amount_fen
        item = PURCHASE_ITEMS[draw[6 + position] % len(PURCHASE_ITEMS)]
        purchases.append(
            PlannedPurchase(
                amount_fen=amount_fen,
                memo=f"Demo purchase: {item}",
                created_at=event_times[len(deposits) + position],
            )
        )
    given_name = GIVEN_NAME_CHARACTERS[draw[13] % len(GIVEN_NAME_CHARACTERS)]
    if draw[14] % 2:
        given_name += GIVEN_NAME_CHARACTERS[draw[15] % len(GIVEN_NAME_CHARACTERS)]
    return InmatePlan(
        index=index,
        surname=SURNAMES[draw[12] % len(SURNAMES)],
        given_name=given_name,
        admitted_at=month_start - dt.timedelta(days=1 + int.from_bytes(draw[16:18]) % 700),
        deposits=deposits,
        purchases=tuple(purchases),
    )


# --- writing rows in bulk ------------------------------------------------------------------


class _BulkRows:
    """Draws ids from a table's own sequence and inserts rows fast: COPY on PostgreSQL,
    ``executemany`` on SQLite. Only for use inside ``transaction.atomic()``."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.is_postgresql = connection.vendor == "postgresql"

    def reserve_ids(self, model: type[models.Model], count: int) -> Sequence[int]:
        if count == 0:
            return []
        table = model._meta.db_table
        if self.is_postgresql:
            self.cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), count],
            )
            return [row[0] for row in self.cursor.fetchall()]
        # SQLite: the transaction is IMMEDIATE (see settings), so no other writer can take
        # ids until it commits; inserting them moves the AUTOINCREMENT sequence past them.
        self.cursor.execute(
            f"SELECT MAX(n) FROM (SELECT seq AS n FROM sqlite_sequence WHERE name = %s "  # noqa: S608 - a model's table name, quoted; values are bound
            f"UNION ALL SELECT MAX(id) FROM {connection.ops.quote_name(table)})",
            [table],
        )
        first = (self.cursor.fetchone()[0] or 0) + 1
        return range(first, first + count)

    def insert(self, model: type[models.Model], rows: Sequence[dict]) -> None:
        """Insert rows given as {column: value} dicts, all with the same columns."""
        if not rows:
            return
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        column_list = ", ".join(quote(column) for column in rows[0])
        if self.is_postgresql:
            with self.cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(tuple(row.values()))
            return
        self.cursor.executemany(
            f"INSERT INTO {table} ({column_list}) VALUES ({', '.join(['%s'] * len(rows[0]))})",  # noqa: S608 - model table and column names, quoted; values are bound
            [tuple(_adapted(value) for value in row.values()) for row in rows],
        )


def _adapted(value):
    """SQLite keeps instants as naive UTC text, as the ORM writes them."""
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dt.date):
        return connection.ops.adapt_datefield_value(value)
    if isinstance(value, uuid.UUID):
        return value.hex
    return value


@dataclass(frozen=True)
class _SystemAccounts:
    clearing_id: int
    fees_id: int
    sales_id: int

    @classmethod
    def of(cls, facility: Facility) -> "_SystemAccounts":
        ids = dict(
            Account.objects.filter(facility=facility, inmate=None)
            .filter(models.Q(provider=PROVIDER) | ~models.Q(kind=Account.Kind.CLEARING))
            .values_list("kind", "id")
        )
        return cls(ids[Account.Kind.CLEARING], ids[Account.Kind.FEES], ids[Account.Kind.SALES])


def _write_batch(
    plans: Sequence[InmatePlan],
    *,
    facility: Facility,
    housing_unit_ids: Sequence[int],
    pin_hashes: Sequence[str],
    system: _SystemAccounts,
    now: dt.datetime,
) -> None:
    """Insert the inmates of ``plans`` with their accounts, periods, deposits and journal:
    the rows the services would write for them, in one go. Call inside one transaction."""
    month = facility.local_month(now)
    with connection.cursor() as cursor:
        bulk = _BulkRows(cursor)
        if bulk.is_postgresql:
            # Every pgtrigger trigger first asks whether it is ignored, by reading the setting
            # pgtrigger.ignore. Never set, the read raises, and catching that costs a
            # subtransaction: about a millisecond a row at commit, minutes for a large seed.
            # An explicit empty list (ignore nothing) takes the fast path; every trigger
            # still runs and still checks.
            cursor.execute("SET LOCAL pgtrigger.ignore = '{}'")
        funded = [plan for plan in plans if plan.deposits]
        inmate_ids = iter(bulk.reserve_ids(Inmate, len(plans)))
        account_ids = iter(bulk.reserve_ids(Account, 2 * len(plans)))
        period_ids = iter(bulk.reserve_ids(MonthlyPeriod, len(funded)))
        deposit_ids = iter(bulk.reserve_ids(Deposit, sum(len(p.deposits) for p in plans)))
        transaction_ids = iter(
            bulk.reserve_ids(Transaction, sum(len(p.deposits) + len(p.purchases) for p in plans))
        )
        rows: dict[type[models.Model], list[dict]] = {
            model: [] for model in (Inmate, Account, MonthlyPeriod, Deposit, Transaction, Entry)
        }  # in foreign-key order
        for plan in plans:
            inmate_id, number = next(inmate_ids), inmate_number(plan.index)
            rows[Inmate].append(
                {
                    "id": inmate_id,
                    "facility_id": facility.pk,
                    "housing_unit_id": housing_unit_ids[(plan.index - 1) % len(housing_unit_ids)],
                    "inmate_number": number,
                    "surname": plan.surname,
                    "given_name": plan.given_name,
                    "status": Inmate.Status.ACTIVE,
                    "pin_hash": pin_hashes[pin_slot(plan.index)],
                    "card_token": secrets.token_urlsafe(24),
                    "admitted_at": plan.admitted_at,
                }
            )
            # As open_inmate_accounts opens them, with the balance the entries below add up
            # to already in place (the same database transaction writes both).
            spendable_id, held_id = next(account_ids), next(account_ids)
            for account_id, kind, balance_fen, balance_cap_fen in (
                (
                    spendable_id,
                    Account.Kind.SPENDABLE,
                    plan.spendable_fen,
                    facility.balance_cap_fen,
                ),
                (held_id, Account.Kind.HELD, 0, None),
            ):
                rows[Account].append(
                    {
                        "id": account_id,
                        "kind": kind,
                        "facility_id": facility.pk,
                        "inmate_id": inmate_id,
                        "provider": "",
                        "currency": facility.currency,
                        "balance_fen": balance_fen,
                        "pending_fen": 0,
                        "balance_cap_fen": balance_cap_fen,
                        "is_frozen": False,
                        "is_closed": False,
                        "created_at": now,
                    }
                )
            if plan.deposits:
                period_id = next(period_ids)
                rows[MonthlyPeriod].append(
                    {
                        "id": period_id,
                        "inmate_id": inmate_id,
                        "facility_id": facility.pk,
                        "month": month,
                        "received_fen": plan.received_fen,
                        "reserved_fen": 0,
                        "cap_fen": facility.monthly_cap_fen,
                    }
                )
            for sequence, deposit in enumerate(plan.deposits, start=1):
                # What reserve_deposit and then credit_deposit write.
                deposit_id, transaction_id = next(deposit_ids), next(transaction_ids)
                deposit_key = f"demo:{facility.code}:{number}:deposit:{sequence}"
                rows[Deposit].append(
                    {
                        "id": deposit_id,
                        "reference": uuid.uuid4(),
                        "inmate_id": inmate_id,
                        "facility_id": facility.pk,
                        "period_id": period_id,
                        "amount_fen": deposit.amount_fen,
                        "fee_fen": deposit.fee_fen,
                        "currency": facility.currency,
                        "provider": PROVIDER,
                        "provider_reference": "",
                        "status": Deposit.Status.CREDITED,
                        "idempotency_scope": SYSTEM_SCOPE,
                        "idempotency_key": deposit_key,
                        "request_hash": request_hash(
                            "reserve_deposit",
                            inmate_id=inmate_id,
                            amount_fen=deposit.amount_fen,
                            provider=PROVIDER,
                            depositor_id=None,
                        ),
                        "created_at": deposit.created_at,
                        "expires_at": deposit.created_at + DEPOSIT_RESERVATION_TTL,
                        "resolved_at": deposit.credited_at,
                    }
                )
                rows[Transaction].append(
                    {
                        "id": transaction_id,
                        "kind": Transaction.Kind.DEPOSIT,
                        "idempotency_scope": SYSTEM_SCOPE,
                        "idempotency_key": f"deposit-credit:{deposit_id}",
                        "request_hash": request_hash("credit_deposit", deposit_id=deposit_id),
                        "facility_id": facility.pk,
                        "inmate_id": inmate_id,
                        "deposit_id": deposit_id,
                        "memo": "",
                        "created_at": deposit.credited_at,
                    }
                )
                legs = [
                    (system.clearing_id, -(deposit.amount_fen + deposit.fee_fen)),
                    (spendable_id, deposit.amount_fen),
                    (system.fees_id, deposit.fee_fen),
                ]
                rows[Entry] += _entries(transaction_id, legs)
            for sequence, purchase in enumerate(plan.purchases, start=1):
                # What debit_purchase writes.
                transaction_id = next(transaction_ids)
                rows[Transaction].append(
                    {
                        "id": transaction_id,
                        "kind": Transaction.Kind.PURCHASE,
                        "idempotency_scope": SYSTEM_SCOPE,
                        "idempotency_key": f"demo:{facility.code}:{number}:purchase:{sequence}",
                        "request_hash": request_hash(
                            "debit_purchase",
                            inmate_id=inmate_id,
                            amount_fen=purchase.amount_fen,
                            memo=purchase.memo,
                        ),
                        "facility_id": facility.pk,
                        "inmate_id": inmate_id,
                        "deposit_id": None,
                        "memo": purchase.memo,
                        "created_at": purchase.created_at,
                    }
                )
                legs = [
                    (spendable_id, -purchase.amount_fen),
                    (system.sales_id, purchase.amount_fen),
                ]
                rows[Entry] += _entries(transaction_id, legs)
        for model, model_rows in rows.items():
            bulk.insert(model, model_rows)


def _entries(transaction_id: int, legs: Sequence[tuple[int, int]]) -> list[dict]:
    """A transaction's entries, as the services' posting helper writes them: zero legs
    dropped, and legs that do not sum to zero refused before anything is written."""
    if sum(amount for _, amount in legs) != 0:
        raise ValueError(f"unbalanced transaction legs: {legs!r}")
    return [
        {"transaction_id": transaction_id, "account_id": account_id, "amount_fen": amount}
        for account_id, amount in legs
        if amount != 0
    ]


# --- the whole demo ------------------------------------------------------------------------


@dataclass
class DemoSite:
    """What a seed made or found. A password is None when the user already existed with
    another password (it is left alone)."""

    facility: Facility
    inmate_count: int
    inmates_created: int
    staff_password: str | None = field(repr=False)
    depositor_password: str | None = field(repr=False)
    kiosk: KioskDevice
    kiosk_key: str = field(repr=False)
    is_kiosk_new: bool
    pin_pool: list[str] = field(repr=False)


def seed_demo(
    *,
    inmate_count: int,
    seed: str,
    known_kiosk_key: str | None = None,
    batch_size: int = BATCH_SIZE,
    now: dt.datetime | None = None,
    on_progress: Callable[[int], None] = lambda inmates: None,
) -> DemoSite:
    """Make (or find) the demo facility, its housing units, staff and family users, a kiosk
    and ``inmate_count`` inmates with money. ``known_kiosk_key`` is a key issued earlier
    (from the last credentials file): its device is kept; without it a new device is issued,
    because a stored key cannot be read back. ``on_progress`` hears how many inmates each
    batch covered. Raises DemoSeedMismatch when demo inmates exist from another seed."""
    now = now or timezone.now()
    demo_secrets = DemoSecrets(seed)
    pin_pool = demo_secrets.pin_pool()

    facility = Facility.objects.filter(code=FACILITY_CODE).first()
    if facility is None:
        facility = facility_services.create_facility(
            code=FACILITY_CODE, name=FACILITY_NAME, **FACILITY_POLICY
        )
    _ensure_same_seed(facility, demo_secrets=demo_secrets, pin_pool=pin_pool)
    housing_unit_ids = [
        HousingUnit.objects.get_or_create(facility=facility, name=name)[0].pk
        for name in HOUSING_UNIT_NAMES
    ]
    staff_password = _ensure_user(
        STAFF_USERNAME, demo_secrets.password(STAFF_USERNAME), is_superuser=True
    )
    depositor_password = _ensure_user(
        DEPOSITOR_USERNAME, demo_secrets.password(DEPOSITOR_USERNAME), is_superuser=False
    )
    # A superuser sees every facility but requests and approves money only where assigned.
    FacilityAssignment.objects.get_or_create(
        user=get_user_model().objects.get(username=STAFF_USERNAME), facility=facility
    )
    kiosk, kiosk_key, is_kiosk_new = _ensure_kiosk(facility, known_key=known_kiosk_key)

    inmates_created = 0
    if _demo_inmates(facility, inmate_count).count() < inmate_count:
        seed_batch = functools.partial(
            _seed_batch,
            facility_id=facility.pk,
            demo_secrets=demo_secrets,
            housing_unit_ids=housing_unit_ids,
            pin_hashes=_hash_pins(pin_pool),
            system=_SystemAccounts.of(facility),
            now=now,
        )
        batches = [
            (first, min(first + batch_size - 1, inmate_count))
            for first in range(1, inmate_count + 1, batch_size)
        ]
        for (first, last), created in _run_batches(seed_batch, batches):
            inmates_created += created
            on_progress(last - first + 1)
    else:
        on_progress(inmate_count)
    return DemoSite(
        facility=facility,
        inmate_count=inmate_count,
        inmates_created=inmates_created,
        staff_password=staff_password,
        depositor_password=depositor_password,
        kiosk=kiosk,
        kiosk_key=kiosk_key,
        is_kiosk_new=is_kiosk_new,
        pin_pool=pin_pool,
    )


def _seed_batch(
    first: int,
    last: int,
    *,
    facility_id: int,
    demo_secrets: DemoSecrets,
    housing_unit_ids: Sequence[int],
    pin_hashes: Sequence[str],
    system: _SystemAccounts,
    now: dt.datetime,
) -> int:
    """Seed the demo inmates numbered ``first``..``last`` that do not exist yet, in one
    database transaction; return how many were created."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # A share lock: batches run side by side, but the caps cannot change under them
            # (update_facility_caps locks the row for update) until they commit.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM facilities_facility WHERE id = %s FOR SHARE", [facility_id]
                )
        facility = Facility.objects.get(pk=facility_id)
        existing = set(
            Inmate.objects.filter(
                facility=facility, inmate_number__range=(inmate_number(first), inmate_number(last))
            ).values_list("inmate_number", flat=True)
        )
        plans = [
            plan_inmate(index, demo_secrets=demo_secrets, facility=facility, now=now)
            for index in range(first, last + 1)
            if inmate_number(index) not in existing
        ]
        if plans:
            _write_batch(
                plans,
                facility=facility,
                housing_unit_ids=housing_unit_ids,
                pin_hashes=pin_hashes,
                system=system,
                now=now,
            )
    return len(plans)


def _run_batches(
    seed_batch: Callable[[int, int], int], batches: Sequence[tuple[int, int]]
) -> Iterator[tuple[tuple[int, int], int]]:
    """Run the batches, yielding each with what it created as it finishes. On PostgreSQL they
    run on PARALLEL_BATCHES connections at once: most of a batch's cost is the database's
    own work (index inserts, foreign-key and balance triggers at commit), which one
    connection keeps on one core. In a caller's open transaction (a test's, say) other
    connections could not see its rows, and SQLite has a single writer: one at a time there."""
    workers = min(PARALLEL_BATCHES, len(batches))
    if connection.vendor != "postgresql" or connection.in_atomic_block or workers < 2:
        for first, last in batches:
            yield (first, last), seed_batch(first, last)
        return

    def in_own_connection(first: int, last: int) -> int:
        try:
            return seed_batch(first, last)
        finally:
            connection.close()  # this worker thread's own connection

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = {pool.submit(in_own_connection, *batch): batch for batch in batches}
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        pool.shutdown(cancel_futures=True)


def iter_inmate_credentials(site: DemoSite) -> Iterator[dict]:
    """Number, PIN and card token of the demo inmates 1..N, streamed from the database."""
    rows = (
        _demo_inmates(site.facility, site.inmate_count)
        .order_by("inmate_number")
        .values_list("inmate_number", "card_token")
        .iterator(chunk_size=10_000)
    )
    for number, card_token in rows:
        match = _INMATE_NUMBER.fullmatch(number)
        if match is None:
            continue
        index = int(match.group(1))
        yield {
            "inmate_number": number,
            "pin": site.pin_pool[pin_slot(index)],
            "card_token": card_token,
        }


def _demo_inmates(facility: Facility, inmate_count: int) -> models.QuerySet:
    return Inmate.objects.filter(
        facility=facility, inmate_number__range=(inmate_number(1), inmate_number(inmate_count))
    )


def _ensure_same_seed(
    facility: Facility, *, demo_secrets: DemoSecrets, pin_pool: Sequence[str]
) -> None:
    """Every seed creates demo inmate 1 first: if it exists, it must have this seed's PIN."""
    pin_hash = (
        Inmate.objects.filter(facility=facility, inmate_number=inmate_number(1))
        .values_list("pin_hash", flat=True)
        .first()
    )
    if pin_hash is not None and not check_password(pin_pool[pin_slot(1)], pin_hash):
        raise DemoSeedMismatch(
            f"The demo inmates of {facility.code!r} were seeded from another seed (or inmate "
            f"{inmate_number(1)}'s PIN was changed); run again with that seed, or on a fresh "
            f"database."
        )


def _hash_pins(pins: Sequence[str]) -> list[str]:
    # PBKDF2 releases the GIL, so threads hash the pool on every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(make_password, pins))


def _ensure_user(username: str, password: str, *, is_superuser: bool) -> str | None:
    """Create the user with ``password``; an existing user is left as it is, and its password
    is returned only if it is still the seeded one."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        email = f"{username}@demo.invalid"
        if is_superuser:
            user_model.objects.create_superuser(username=username, email=email, password=password)
        else:
            user_model.objects.create_user(username=username, email=email, password=password)
        return password
    return password if check_password(password, user.password) else None


def _ensure_kiosk(facility: Facility, *, known_key: str | None) -> tuple[KioskDevice, str, bool]:
    if known_key:
        device = KioskDevice.objects.filter(
            facility=facility, is_active=True, key_hash=hash_device_key(known_key)
        ).first()
        if device is not None:
            return device, known_key, False
    device, key = facility_services.register_kiosk_device(facility=facility, name=KIOSK_NAME)
    return device, key, True
