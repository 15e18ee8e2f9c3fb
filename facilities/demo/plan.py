"""The demo's plan: its names and constants, the seed's secrets (PINs, passwords), and what
money each inmate gets. Pure computation: nothing here writes to the database."""

import base64
import datetime as dt
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings

# The services' own request hash, so that replaying a seeded key through the real service is
# recognised as the same request (invariant 6).
from ..models import Facility

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
class InmatePlan:
    index: int
    surname: str
    given_name: str
    admitted_at: dt.datetime
    deposits: tuple[PlannedDeposit, ...]

    @property
    def received_fen(self) -> int:
        return sum(deposit.amount_fen for deposit in self.deposits)

    @property
    def spendable_fen(self) -> int:
        """Before the commissary: the demo's purchases are real kiosk orders, placed through
        the catalog's services once the inmates exist (``catalog.demo.place_demo_orders``)."""
        return self.received_fen


def plan_inmate(
    index: int, *, demo_secrets: DemoSecrets, facility: Facility, now: dt.datetime
) -> InmatePlan:
    """One credited deposit in the current facility-local month (two for one inmate in four),
    between the month's first instant and ``now``.
    Deposits stop where the next one would break either cap, so the plan obeys invariants 3
    and 4 whatever the caps are."""
    # One keyed hash per inmate; each decision reads its own bytes of it: 0-2 deposits,
    # 3-7 unused, 8-11 when things happen, 12-15 name, 16-17 admission.
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

    # Deposits spread over the month so far, each in its own slot so that one is credited
    # before the next starts (the commissary's orders come after them).
    span = now - month_start
    slot = span / (len(deposit_amounts) + 1)
    event_times = [
        month_start + slot * position + slot * (draw[8 + position] / 512)  # in its first half
        for position in range(len(deposit_amounts))
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
    given_name = GIVEN_NAME_CHARACTERS[draw[13] % len(GIVEN_NAME_CHARACTERS)]
    if draw[14] % 2:
        given_name += GIVEN_NAME_CHARACTERS[draw[15] % len(GIVEN_NAME_CHARACTERS)]
    return InmatePlan(
        index=index,
        surname=SURNAMES[draw[12] % len(SURNAMES)],
        given_name=given_name,
        admitted_at=month_start - dt.timedelta(days=1 + int.from_bytes(draw[16:18]) % 700),
        deposits=deposits,
    )
