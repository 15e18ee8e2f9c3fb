"""Held deposits against a model of the money, in any order of operations.

A hypothesis state machine drives the real flow of family deposits (``payments.start_deposit``,
the provider saying settled or failed, late payments after expiry), a monitoring rule that holds
every deposit of ¥300 or more, security officers accepting and rejecting holds (twice, too),
the daily jobs (reservations expire after their time, holds undecided for 14 days are refunded)
and kiosk purchases (``catalog.services.place_order``), on two inmates across month ends. A few
integers predict each inmate's spendable and pending money, each month's received and reserved
money, and every deposit's and hold's state. After every step the database must agree with the
model, the caps must hold (at most ¥1,000 received or reserved in a calendar month, at most
¥5,000 of money at any moment) and every reconciliation check must come back clean.

Each example runs inside a savepoint rolled back afterwards, so examples share the facility,
inmates, family, officer, kiosk and rule made once for the test and nothing else.
"""

import datetime as dt
import itertools
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.roles import SECURITY_OFFICER, assign_role
from catalog import services as catalog
from commissary import errors
from facilities import services as facility_services
from facilities.models import DEFAULT_BALANCE_CAP_FEN, DEFAULT_MONTHLY_CAP_FEN
from ledger import batch
from ledger.models import Deposit, MonthlyPeriod
from ledger.reconciliation import run_checks
from ledger.selectors import BALANCE_ROOM_STEP_FEN, inmate_balance
from monitoring import services as monitoring
from monitoring.models import Hold, Rule
from payments import services as payments
from payments.models import Payment
from tests.catalog.helpers import product_at
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.payments.helpers import approved_link, depositor

from .helpers import rule_at

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Two hours before the facility's February starts: the clock soon crosses into it.
START = dt.datetime(2026, 1, 31, 22, 0, tzinfo=SHANGHAI)
HELD_FROM_FEN = 30_000  # the rule: a deposit of ¥300 or more is held for review
PRODUCT_FEN = 5_000
REFUND_AFTER = dt.timedelta(days=14)  # the facility's default review deadline

deposit_amounts_fen = st.integers(1, 12).map(lambda n: n * 5_000)  # ¥50 … ¥600
AS_MUCH_AS_ALLOWED = "as much as allowed"
JUST_OVER_THE_LIMIT = "just over the limit"
inmate_numbers = st.integers(0, 1)
picks = st.integers(0, 10**6)


def local_month(instant: dt.datetime) -> dt.date:
    return instant.astimezone(SHANGHAI).date().replace(day=1)


@dataclass
class ModelInmate:
    spendable_fen: int = 0
    pending_fen: int = 0
    months: dict = field(default_factory=dict)  # month -> [received_fen, reserved_fen]

    def month(self, month: dt.date) -> list[int]:
        return self.months.setdefault(month, [0, 0])

    @property
    def balance_room_fen(self) -> int:
        return DEFAULT_BALANCE_CAP_FEN - self.spendable_fen - self.pending_fen

    def can_send_fen(self, month: dt.date) -> int:
        """What the family may send now (``ledger.selectors.deposit_room``)."""
        received_fen, reserved_fen = self.months.get(month, [0, 0])
        month_room_fen = DEFAULT_MONTHLY_CAP_FEN - received_fen - reserved_fen
        balance_room_fen = self.balance_room_fen
        if balance_room_fen < month_room_fen:
            return max(0, balance_room_fen - balance_room_fen % BALANCE_ROOM_STEP_FEN)
        return max(0, month_room_fen)

    def fits(self, amount_fen: int, month: dt.date) -> bool:
        """Whether the ledger reserves ``amount_fen`` under both caps now."""
        received_fen, reserved_fen = self.months.get(month, [0, 0])
        return (
            amount_fen <= self.balance_room_fen
            and received_fen + reserved_fen + amount_fen <= DEFAULT_MONTHLY_CAP_FEN
        )


@dataclass
class ModelDeposit:
    inmate: int
    amount_fen: int
    month: dt.date  # the month its room is reserved or received in
    payment_id: int
    status: str = Deposit.Status.CREATED
    held_since: dt.datetime | None = None
    hold_state: str | None = None


class HoldsMachine(RuleBasedStateMachine):
    # Set by the test: made once, outside the examples' savepoints.
    inmate_records: list = []
    link_ids: list = []
    family = None
    officer = None
    device_id: int = 0
    product_id: int = 0

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.clock = START
        self.inmates = [ModelInmate() for _ in self.inmate_records]
        self.deposits: dict[int, ModelDeposit] = {}
        self.keys = (f"key-{n}" for n in itertools.count())

    def teardown(self):
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    @staticmethod
    def _pick(pick: int, ids):
        ordered = sorted(ids)
        return ordered[pick % len(ordered)]

    def _credit(self, deposit: ModelDeposit) -> None:
        inmate = self.inmates[deposit.inmate]
        inmate.pending_fen -= deposit.amount_fen
        inmate.spendable_fen += deposit.amount_fen
        period = inmate.month(deposit.month)
        period[0] += deposit.amount_fen
        period[1] -= deposit.amount_fen
        deposit.status = Deposit.Status.CREDITED

    def _give_back(self, deposit: ModelDeposit, status: str) -> None:
        inmate = self.inmates[deposit.inmate]
        inmate.pending_fen -= deposit.amount_fen
        inmate.month(deposit.month)[1] -= deposit.amount_fen
        deposit.status = status

    # --- deposits -------------------------------------------------------------------------

    @rule(
        number=inmate_numbers,
        amount_fen=st.one_of(
            deposit_amounts_fen, st.sampled_from([AS_MUCH_AS_ALLOWED, JUST_OVER_THE_LIMIT])
        ),
    )
    def start_deposit(self, number, amount_fen):
        """The family starts a deposit: refused above what may be sent now, else reserved."""
        inmate, month = self.inmates[number], local_month(self.clock)
        can_send_fen = inmate.can_send_fen(month)
        if amount_fen == AS_MUCH_AS_ALLOWED:
            amount_fen = can_send_fen or 5_000
        elif amount_fen == JUST_OVER_THE_LIMIT:
            amount_fen = can_send_fen + 100
        if amount_fen > can_send_fen:
            with pytest.raises(payments.OverDepositRoom):
                payments.start_deposit(
                    depositor=self.family,
                    link_id=self.link_ids[number],
                    amount_fen=amount_fen,
                    idempotency_key=next(self.keys),
                    now=self.clock,
                )
            return
        deposit, _url = payments.start_deposit(
            depositor=self.family,
            link_id=self.link_ids[number],
            amount_fen=amount_fen,
            idempotency_key=next(self.keys),
            now=self.clock,
        )
        inmate.pending_fen += amount_fen
        inmate.month(month)[1] += amount_fen
        payment_id = Payment.objects.values_list("pk", flat=True).get(deposit=deposit)
        self.deposits[deposit.pk] = ModelDeposit(number, amount_fen, month, payment_id)

    @precondition(lambda self: self.deposits)
    @rule(pick=picks)
    def provider_says_paid(self, pick):
        """A callback or a poll says the payment settled: credited, or held when the rule
        fires; a payment settling after its reservation ended is reserved again this month
        (held or credited) if it still fits, else refunded. A replay changes nothing."""
        deposit_id = self._pick(pick, self.deposits)
        deposit = self.deposits[deposit_id]
        payments.apply_provider_status(
            payment_id=deposit.payment_id, status="settled", now=self.clock
        )
        is_held = deposit.amount_fen >= HELD_FROM_FEN
        inmate, month = self.inmates[deposit.inmate], local_month(self.clock)
        if deposit.status == Deposit.Status.CREATED:
            if is_held:
                deposit.status, deposit.held_since = Deposit.Status.HELD, self.clock
                deposit.hold_state = Hold.State.PENDING
            else:
                self._credit(deposit)
        elif deposit.status in (Deposit.Status.EXPIRED, Deposit.Status.FAILED):
            if not inmate.fits(deposit.amount_fen, month):
                deposit.status = Deposit.Status.REFUNDED
                return
            deposit.month = month
            if is_held:
                inmate.pending_fen += deposit.amount_fen
                inmate.month(month)[1] += deposit.amount_fen
                deposit.status, deposit.held_since = Deposit.Status.HELD, self.clock
                deposit.hold_state = Hold.State.PENDING
            else:
                inmate.spendable_fen += deposit.amount_fen
                inmate.month(month)[0] += deposit.amount_fen
                deposit.status = Deposit.Status.CREDITED

    @precondition(lambda self: self.deposits)
    @rule(pick=picks)
    def provider_says_failed(self, pick):
        """The payment failed: a reservation still waiting is released; anything else stays."""
        deposit_id = self._pick(pick, self.deposits)
        deposit = self.deposits[deposit_id]
        payments.apply_provider_status(
            payment_id=deposit.payment_id, status="failed", now=self.clock
        )
        if deposit.status == Deposit.Status.CREATED:
            self._give_back(deposit, Deposit.Status.FAILED)

    # --- the review -----------------------------------------------------------------------

    def _decide(self, pick, decide) -> None:
        held = [i for i, d in self.deposits.items() if d.hold_state is not None]
        deposit_id = self._pick(pick, held)
        deposit = self.deposits[deposit_id]
        hold_id = Hold.objects.values_list("pk", flat=True).get(deposit_id=deposit_id)
        if deposit.hold_state != Hold.State.PENDING:
            with pytest.raises(monitoring.HoldAlreadyDecided):
                decide(hold_id)
            return
        decide(hold_id)
        return deposit

    @precondition(lambda self: any(d.hold_state for d in self.deposits.values()))
    @rule(pick=picks)
    def accept(self, pick):
        """Accept credits the held deposit in the month it was reserved in, once."""
        deposit = self._decide(
            pick,
            lambda hold_id: monitoring.accept_hold(
                hold_id=hold_id, staff=self.officer, now=self.clock
            ),
        )
        if deposit is not None:
            self._credit(deposit)
            deposit.hold_state = Hold.State.ACCEPTED

    @precondition(lambda self: any(d.hold_state for d in self.deposits.values()))
    @rule(pick=picks)
    def reject(self, pick):
        """Reject refunds the held deposit and gives its room back, once."""
        deposit = self._decide(
            pick,
            lambda hold_id: monitoring.reject_hold(
                hold_id=hold_id, staff=self.officer, reasons=["potential_fraud"], now=self.clock
            ),
        )
        if deposit is not None:
            self._give_back(deposit, Deposit.Status.REFUNDED)
            deposit.hold_state = Hold.State.REJECTED

    # --- purchases --------------------------------------------------------------------------

    @rule(number=inmate_numbers, quantity=st.integers(1, 10))
    def buy(self, number, quantity):
        """A kiosk order: debited from spendable money, refused when there is too little."""
        inmate, amount_fen = self.inmates[number], quantity * PRODUCT_FEN
        place = lambda: catalog.place_order(  # noqa: E731 - one call, run once or expected to fail
            inmate_id=self.inmate_records[number].pk,
            device_id=self.device_id,
            items=[{"product_id": self.product_id, "quantity": quantity}],
            idempotency_key=next(self.keys),
            now=self.clock,
        )
        if amount_fen > inmate.spendable_fen:
            with pytest.raises(errors.InsufficientFunds):
                place()
            return
        place()
        inmate.spendable_fen -= amount_fen

    # --- time -----------------------------------------------------------------------------

    @rule(
        step=st.sampled_from(
            [
                dt.timedelta(minutes=10),
                dt.timedelta(minutes=45),
                dt.timedelta(hours=5),
                dt.timedelta(days=3),
                dt.timedelta(days=15),
                dt.timedelta(days=29),
            ]
        )
    )
    def time_passes(self, step):
        """The daily jobs run: reservations past their expiry are released (never a held
        deposit), and holds undecided for the review deadline are refunded."""
        self.clock += step
        expires_at = dict(
            Deposit.objects.filter(pk__in=self.deposits).values_list("pk", "expires_at")
        )
        batch.expire_stale_deposits(now=self.clock)
        monitoring.refund_stale_holds(now=self.clock)
        for deposit_id, deposit in sorted(self.deposits.items()):
            if deposit.status == Deposit.Status.CREATED and expires_at[deposit_id] < self.clock:
                self._give_back(deposit, Deposit.Status.EXPIRED)
            elif (
                deposit.hold_state == Hold.State.PENDING
                and self.clock - deposit.held_since >= REFUND_AFTER
            ):
                self._give_back(deposit, Deposit.Status.REFUNDED)
                deposit.hold_state = Hold.State.TIMED_OUT

    # --- after every step -----------------------------------------------------------------

    @invariant()
    def the_money_the_caps_and_the_holds_agree_with_the_model(self):
        month = local_month(self.clock)
        for record, inmate in zip(self.inmate_records, self.inmates, strict=True):
            balance = inmate_balance(inmate=record, now=self.clock)
            assert (balance.spendable_fen, balance.pending_fen) == (
                inmate.spendable_fen,
                inmate.pending_fen,
            )
            assert (balance.month_received_fen, balance.month_reserved_fen) == tuple(
                inmate.months.get(month, [0, 0])
            )
            # The balance cap, with held deposits counted while they wait.
            assert balance.spendable_fen + balance.held_fen + balance.pending_fen <= (
                DEFAULT_BALANCE_CAP_FEN
            )
            periods = {
                period_month: [received_fen, reserved_fen]
                for period_month, received_fen, reserved_fen in MonthlyPeriod.objects.filter(
                    inmate=record
                ).values_list("month", "received_fen", "reserved_fen")
            }
            assert periods == {m: v for m, v in inmate.months.items() if m in periods}
            assert all(v == [0, 0] for m, v in inmate.months.items() if m not in periods)
            # The monthly cap: what is received and what waits (reserved or held) in any month.
            for received_fen, reserved_fen in periods.values():
                assert 0 <= received_fen <= received_fen + reserved_fen <= DEFAULT_MONTHLY_CAP_FEN
        # Every held deposit's reservation is in its period's reserved money and its inmate's
        # pending money.
        held = Deposit.objects.filter(pk__in=self.deposits, status=Deposit.Status.HELD)
        for deposit in held:
            assert deposit.amount_fen <= deposit.period.reserved_fen
        statuses = dict(Deposit.objects.filter(pk__in=self.deposits).values_list("pk", "status"))
        assert statuses == {pk: d.status for pk, d in self.deposits.items()}
        holds = dict(
            Hold.objects.filter(deposit_id__in=self.deposits).values_list("deposit_id", "state")
        )
        assert holds == {pk: d.hold_state for pk, d in self.deposits.items() if d.hold_state}
        assert run_checks(now=self.clock) == []


@pytest.mark.django_db
def test_held_deposits_keep_every_money_invariant_in_any_order_of_operations(settings):
    settings.PAYMENTS_SANDBOX = True
    facility = FacilityFactory()
    assert (facility.monthly_cap_fen, facility.balance_cap_fen) == (100_000, 500_000)
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, SECURITY_OFFICER)
    rule_at(facility, Rule.Kind.AMOUNT_AT_LEAST, amount_fen=HELD_FROM_FEN, staff=officer)
    inmates = [InmateFactory(facility=facility) for _ in range(2)]
    family = depositor()
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    product = product_at(facility, price_fen=PRODUCT_FEN, stock=10**6)
    machine = type(
        "HoldsMachineForTwoInmates",
        (HoldsMachine,),
        {
            "inmate_records": inmates,
            "link_ids": [approved_link(family, inmate).pk for inmate in inmates],
            "family": family,
            "officer": officer,
            "device_id": device.pk,
            "product_id": product.pk,
        },
    )
    run_state_machine_as_test(
        machine,
        settings=hypothesis_settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
