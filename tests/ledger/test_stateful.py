"""The ledger services against a model of the money small enough to check by eye.

A hypothesis state machine drives random sequences of deposits (reserved, credited, failed,
expired), purchases, refunds, staff adjustments, holds, freezes and a clock that crosses a
month boundary on two inmates. A few dictionaries of integers predict every inmate's
spendable, held and pending money and each month's received and reserved money, and which
domain error each call must raise. After every step the database must agree with the model
and every reconciliation check must come back clean.

Each example runs inside a savepoint that is rolled back afterwards, so examples share the
facility, inmates and staff made once for the test and nothing else.
"""

import datetime as dt
import itertools
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from commissary import errors
from ledger import services
from ledger.models import Deposit, MonthlyPeriod
from ledger.reconciliation import run_checks
from ledger.selectors import inmate_balance
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import kiosk_of, kiosk_order

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Two hours before the facility's February starts: the clock rules soon cross into it.
START = dt.datetime(2025, 1, 31, 22, 0, tzinfo=SHANGHAI)
RESERVATION_TTL = dt.timedelta(minutes=30)
# Caps small enough for a few random amounts to reach them.
MONTHLY_CAP_FEN = 40_000
BALANCE_CAP_FEN = 30_000
APPROVAL_THRESHOLD_FEN = 10_000
APPROVAL_WINDOW = dt.timedelta(hours=24)  # the facility's default approval window

deposit_amounts_fen = st.integers(1, 30).map(lambda n: n * 1_000)
spending_amounts_fen = st.integers(1, 30).map(lambda n: n * 500)
# Deposits sized from the room left under both caps: exactly all of it, or 500 fen more.
AS_MUCH_AS_ALLOWED = "as much as allowed"
JUST_OVER_THE_LIMIT = "just over the limit"
inmate_numbers = st.integers(0, 1)
picks = st.integers(0, 10**6)


def local_month(instant: dt.datetime) -> dt.date:
    return instant.astimezone(SHANGHAI).date().replace(day=1)


@dataclass
class ModelInmate:
    spendable_fen: int = 0
    held_fen: int = 0
    pending_fen: int = 0
    is_frozen: bool = False
    months: dict = field(default_factory=dict)  # month -> [received_fen, reserved_fen]
    unapproved_debits: list = field(default_factory=list)  # (instant, fen) without approver

    def unapproved_debits_fen(self, *, since: dt.datetime) -> int:
        return sum(fen for instant, fen in self.unapproved_debits if instant >= since)

    @property
    def room_fen(self) -> int:
        return max(0, BALANCE_CAP_FEN - self.spendable_fen - self.held_fen - self.pending_fen)

    def month(self, month: dt.date) -> list[int]:
        return self.months.get(month, [0, 0])


@dataclass
class ModelDeposit:
    inmate: int
    amount_fen: int
    month: dt.date
    expires_at: dt.datetime
    status: str = Deposit.Status.CREATED


@dataclass
class ModelPurchase:
    inmate: int
    amount_fen: int
    idempotency_key: str
    refunded_fen: int = 0


def expect(error, call):
    """Run ``call``; it must raise exactly ``error``, or succeed when ``error`` is None."""
    if error is None:
        return call()
    with pytest.raises(error):
        call()
    return None


class LedgerMachine(RuleBasedStateMachine):
    # Set by the test: made once, outside the examples' savepoints.
    inmate_records: list = []
    staff_id: int = 0
    approver_id: int = 0

    def __init__(self):
        super().__init__()
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.clock = START
        self.inmates = [ModelInmate() for _ in self.inmate_records]
        self.deposits: dict[int, ModelDeposit] = {}
        self.purchases: dict[int, ModelPurchase] = {}
        self.keys = (f"key-{n}" for n in itertools.count())

    def teardown(self):
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    def _inmate_id(self, number: int) -> int:
        return self.inmate_records[number].pk

    @staticmethod
    def _pick(pick: int, ids):
        ordered = sorted(ids)
        return ordered[pick % len(ordered)]

    # --- deposits -------------------------------------------------------------------------

    @initialize(
        first_fen=deposit_amounts_fen,
        second_fen=deposit_amounts_fen,
        held_quarters=st.integers(0, 4),
    )
    def fund_both_inmates(self, first_fen, second_fen, held_quarters):
        """Start with money to spend, most of the time, and some of the second inmate's
        money held (held money counts against the balance cap but cannot be spent)."""
        for number, amount_fen in enumerate([first_fen, second_fen]):
            self.reserve_deposit(number, amount_fen, is_paid_at_once=True)
        held_fen = self.inmates[1].spendable_fen * held_quarters // 4
        if held_fen:
            self.hold_funds(1, held_fen)

    @rule(
        number=inmate_numbers,
        amount_fen=st.one_of(
            deposit_amounts_fen, st.sampled_from([AS_MUCH_AS_ALLOWED, JUST_OVER_THE_LIMIT])
        ),
        is_paid_at_once=st.booleans(),
    )
    def reserve_deposit(self, number, amount_fen, is_paid_at_once):
        """Reserve a deposit and, when the family pays at once, credit it straight away."""
        inmate, month = self.inmates[number], local_month(self.clock)
        received_fen, reserved_fen = inmate.month(month)
        if amount_fen in (AS_MUCH_AS_ALLOWED, JUST_OVER_THE_LIMIT):
            allowed_fen = min(inmate.room_fen, MONTHLY_CAP_FEN - received_fen - reserved_fen)
            if amount_fen == JUST_OVER_THE_LIMIT:
                amount_fen = allowed_fen + 500
            else:
                amount_fen = allowed_fen or 1_000
        if inmate.is_frozen:
            error = errors.AccountFrozen
        elif amount_fen > inmate.room_fen:
            error = errors.BalanceCapExceeded
        elif received_fen + reserved_fen + amount_fen > MONTHLY_CAP_FEN:
            error = errors.MonthlyCapExceeded
        else:
            error = None
        deposit = expect(
            error,
            lambda: services.reserve_deposit(
                idempotency_scope="depositor:1",
                inmate_id=self._inmate_id(number),
                amount_fen=amount_fen,
                idempotency_key=next(self.keys),
                now=self.clock,
            ),
        )
        if error is None:
            inmate.pending_fen += amount_fen
            inmate.months[month] = [received_fen, reserved_fen + amount_fen]
            self.deposits[deposit.pk] = ModelDeposit(
                number, amount_fen, month, self.clock + RESERVATION_TTL
            )
            if is_paid_at_once:
                self._credit(deposit.pk)

    @precondition(lambda self: self.deposits)
    @rule(pick=picks)
    def credit_deposit(self, pick):
        self._credit(self._pick(pick, self.deposits))

    def _credit(self, deposit_id):
        deposit = self.deposits[deposit_id]
        # Crediting a credited deposit again is a harmless replay of the provider's callback.
        is_refused = deposit.status in (Deposit.Status.FAILED, Deposit.Status.EXPIRED)
        expect(
            errors.DepositNotPending if is_refused else None,
            lambda: services.credit_deposit(deposit_id=deposit_id, now=self.clock),
        )
        if deposit.status == Deposit.Status.CREATED:
            inmate = self.inmates[deposit.inmate]
            inmate.pending_fen -= deposit.amount_fen
            inmate.spendable_fen += deposit.amount_fen
            period = inmate.months[deposit.month]
            period[0] += deposit.amount_fen
            period[1] -= deposit.amount_fen
            deposit.status = Deposit.Status.CREDITED

    @precondition(lambda self: self.deposits)
    @rule(pick=picks)
    def fail_deposit(self, pick):
        deposit_id = self._pick(pick, self.deposits)
        deposit = self.deposits[deposit_id]
        is_refused = deposit.status in (Deposit.Status.CREDITED, Deposit.Status.EXPIRED)
        expect(
            errors.DepositNotPending if is_refused else None,
            lambda: services.release_deposit(deposit_id=deposit_id, now=self.clock),
        )
        if deposit.status == Deposit.Status.CREATED:
            self._give_back_reservation(deposit, Deposit.Status.FAILED)

    def _give_back_reservation(self, deposit: ModelDeposit, status: str) -> None:
        inmate = self.inmates[deposit.inmate]
        inmate.pending_fen -= deposit.amount_fen
        inmate.months[deposit.month][1] -= deposit.amount_fen
        deposit.status = status

    @rule(
        step=st.sampled_from(
            [
                dt.timedelta(minutes=10),
                dt.timedelta(minutes=45),
                dt.timedelta(hours=5),
                dt.timedelta(days=3),
                dt.timedelta(days=29),
            ]
        )
    )
    def advance_clock(self, step):
        """Time passes; the expiry job then releases every reservation past its expiry."""
        self.clock += step
        for deposit_id, deposit in sorted(self.deposits.items()):
            if deposit.status == Deposit.Status.CREATED and deposit.expires_at < self.clock:
                services.release_deposit(
                    deposit_id=deposit_id, status=Deposit.Status.EXPIRED, now=self.clock
                )
                self._give_back_reservation(deposit, Deposit.Status.EXPIRED)

    # --- purchases and refunds ------------------------------------------------------------

    @rule(number=inmate_numbers, amount_fen=spending_amounts_fen)
    def purchase(self, number, amount_fen):
        inmate, key = self.inmates[number], next(self.keys)
        if inmate.is_frozen:
            error = errors.AccountFrozen
        elif amount_fen > inmate.spendable_fen:
            error = errors.InsufficientFunds
        else:
            error = None
        order = expect(
            error,
            lambda: kiosk_order(
                self.inmate_records[number], amount_fen, idempotency_key=key, now=self.clock
            ),
        )
        if error is None:
            inmate.spendable_fen -= amount_fen
            self.purchases[order.purchase_id] = ModelPurchase(number, amount_fen, key)

    @precondition(lambda self: self.purchases)
    @rule(pick=picks, thirds=st.integers(1, 4), is_after_a_top_up=st.booleans())
    def refund_purchase(self, pick, thirds, is_after_a_top_up):
        """Refund a third, two thirds, all or four thirds of a purchase, sometimes just after
        the family deposited as much as allowed (so that the refund meets the balance cap)."""
        purchase_id = self._pick(pick, self.purchases)
        purchase = self.purchases[purchase_id]
        if is_after_a_top_up:
            self.reserve_deposit(purchase.inmate, AS_MUCH_AS_ALLOWED, is_paid_at_once=False)
        amount_fen = -(-purchase.amount_fen * thirds // 3)
        inmate = self.inmates[purchase.inmate]
        is_refused = amount_fen > purchase.amount_fen - purchase.refunded_fen
        expect(
            errors.RefundExceedsPurchase if is_refused else None,
            lambda: services.refund_purchase(
                idempotency_scope="system",
                purchase_id=purchase_id,
                amount_fen=amount_fen,
                idempotency_key=next(self.keys),
                now=self.clock,
            ),
        )
        if not is_refused:
            # The inmate's own money always comes back; what would go over the cap is held.
            to_spendable_fen = min(amount_fen, inmate.room_fen)
            inmate.spendable_fen += to_spendable_fen
            inmate.held_fen += amount_fen - to_spendable_fen
            purchase.refunded_fen += amount_fen

    @precondition(lambda self: self.purchases)
    @rule(pick=picks, same_amount=st.booleans())
    def replay_purchase(self, pick, same_amount):
        """A kiosk retrying with its idempotency key gets the first result and moves nothing;
        the same key for a different amount is refused."""
        purchase_id = self._pick(pick, self.purchases)
        purchase = self.purchases[purchase_id]
        replayed = expect(
            None if same_amount else errors.IdempotencyConflict,
            lambda: kiosk_order(
                self.inmate_records[purchase.inmate],
                purchase.amount_fen + (0 if same_amount else 1),
                idempotency_key=purchase.idempotency_key,
                now=self.clock,
            ),
        )
        if same_amount:
            assert replayed.purchase_id == purchase_id

    # --- staff ----------------------------------------------------------------------------

    @rule(
        number=inmate_numbers,
        amount_fen=st.integers(-30, 30).filter(bool).map(lambda n: n * 500),
        approval=st.sampled_from(["none", "self", "second staff member"]),
    )
    def adjust_balance(self, number, amount_fen, approval):
        inmate = self.inmates[number]
        approved_by_id = {
            "none": None,
            "self": self.staff_id,
            "second staff member": self.approver_id,
        }[approval]
        approved = approval == "second staff member"
        # Unapproved debits by the same staff member over the last 24 hours (the facility's
        # approval window) are summed against the threshold: a debit cannot be split.
        taken_fen = max(0, -amount_fen)
        if inmate.is_frozen:
            error = errors.AccountFrozen  # the freeze rules: no staff credit or debit
        elif approval == "self":
            error = errors.ApprovalRequired  # a named approver is always checked
        # Every credit, and a debit above the threshold, needs a second trust officer.
        elif not approved and (
            amount_fen > 0
            or -amount_fen > APPROVAL_THRESHOLD_FEN
            or inmate.unapproved_debits_fen(since=self.clock - APPROVAL_WINDOW) + taken_fen
            > APPROVAL_THRESHOLD_FEN
        ):
            error = errors.ApprovalRequired
        elif amount_fen > inmate.room_fen:
            error = errors.BalanceCapExceeded
        elif -amount_fen > inmate.spendable_fen:
            error = errors.InsufficientFunds
        else:
            error = None
        expect(
            error,
            lambda: services.adjust_balance(
                inmate_id=self._inmate_id(number),
                amount_fen=amount_fen,
                reason="count correction",
                staff_id=self.staff_id,
                approved_by_id=approved_by_id,
                idempotency_key=next(self.keys),
                now=self.clock,
            ),
        )
        if error is None:
            inmate.spendable_fen += amount_fen
            if not approved and taken_fen:
                inmate.unapproved_debits.append((self.clock, taken_fen))

    @rule(number=inmate_numbers, amount_fen=spending_amounts_fen)
    def hold_funds(self, number, amount_fen):
        inmate = self.inmates[number]
        error = errors.InsufficientFunds if amount_fen > inmate.spendable_fen else None
        expect(
            error,
            lambda: services.hold_funds(
                inmate_id=self._inmate_id(number),
                amount_fen=amount_fen,
                reason="investigation",
                staff_id=self.staff_id,
                idempotency_key=next(self.keys),
                now=self.clock,
            ),
        )
        if error is None:
            inmate.spendable_fen -= amount_fen
            inmate.held_fen += amount_fen

    @precondition(lambda self: any(inmate.held_fen for inmate in self.inmates))
    @rule(number=inmate_numbers, quarters=st.integers(1, 5))
    def release_hold(self, number, quarters):
        """Release a quarter, half, three quarters, all or five quarters of what is held."""
        inmate = self.inmates[number]
        amount_fen = max(500, -(-inmate.held_fen * quarters // 4))
        if inmate.is_frozen:
            error = errors.AccountFrozen  # held money stays held while frozen
        elif amount_fen > inmate.held_fen:
            error = errors.InsufficientFunds
        elif inmate.spendable_fen + inmate.pending_fen + amount_fen > BALANCE_CAP_FEN:
            error = errors.BalanceCapExceeded
        else:
            error = None
        expect(
            error,
            lambda: services.release_hold(
                inmate_id=self._inmate_id(number),
                amount_fen=amount_fen,
                reason="investigation closed",
                staff_id=self.staff_id,
                idempotency_key=next(self.keys),
                now=self.clock,
            ),
        )
        if error is None:
            inmate.held_fen -= amount_fen
            inmate.spendable_fen += amount_fen

    @rule(number=inmate_numbers, is_frozen=st.booleans())
    def set_account_frozen(self, number, is_frozen):
        error = errors.ValidationFailed if self.inmates[number].is_frozen == is_frozen else None
        expect(
            error,
            lambda: services.set_account_frozen(
                inmate_id=self._inmate_id(number),
                is_frozen=is_frozen,
                reason="search",
                staff_id=self.staff_id,
                idempotency_key=next(self.keys),
                now=self.clock,
            ),
        )
        self.inmates[number].is_frozen = is_frozen

    # --- after every step -----------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self):
        month = local_month(self.clock)
        for record, inmate in zip(self.inmate_records, self.inmates, strict=True):
            balance = inmate_balance(inmate=record, now=self.clock)
            assert balance.month == month
            assert (
                balance.spendable_fen,
                balance.held_fen,
                balance.pending_fen,
                balance.month_received_fen,
                balance.month_reserved_fen,
                balance.is_frozen,
            ) == (
                inmate.spendable_fen,
                inmate.held_fen,
                inmate.pending_fen,
                *inmate.month(month),
                inmate.is_frozen,
            )
            periods = {
                period_month: [received_fen, reserved_fen]
                for period_month, received_fen, reserved_fen in MonthlyPeriod.objects.filter(
                    inmate=record
                ).values_list("month", "received_fen", "reserved_fen")
            }
            assert periods == inmate.months
        assert run_checks(now=self.clock) == []


@pytest.mark.django_db
def test_ledger_services_agree_with_a_model_of_the_money_in_any_order_of_operations():
    facility = FacilityFactory(
        monthly_cap_fen=MONTHLY_CAP_FEN,
        balance_cap_fen=BALANCE_CAP_FEN,
        adjustment_approval_threshold_fen=APPROVAL_THRESHOLD_FEN,
        deposit_fee_fixed_fen=100,
        deposit_fee_rate_bp=50,
    )
    kiosk_of(facility)  # the kiosk the purchases come from, made outside the examples
    machine = type(
        "LedgerMachineForTwoInmates",
        (LedgerMachine,),
        {
            "inmate_records": [InmateFactory(facility=facility) for _ in range(2)],
            "staff_id": StaffFactory(facilities=[facility]).pk,
            "approver_id": StaffFactory(facilities=[facility], may_approve=True).pk,
        },
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
