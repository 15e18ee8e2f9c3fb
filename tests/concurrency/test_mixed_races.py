"""Purchases, refunds, holds and deposits racing on one inmate's money, on PostgreSQL.

Idempotency keys sent many times at once move money once; refunds racing for the same
purchase never give back more than was bought; and a crowd of threads doing random money
operations on one inmate leaves a ledger whose balances, caps and periods agree with what the
threads were told succeeded (invariants 1-4 and 6)."""

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from commissary import errors
from ledger import services
from ledger.models import Account, Transaction
from ledger.reconciliation import run_checks
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import kiosk_of, kiosk_order, post_purchase, product_priced

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def _fund(inmate, amount_fen, *, now, key="start"):
    deposit = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key,
        now=now,
    )
    services.credit_deposit(deposit_id=deposit.pk, now=now)


def _errors(outcomes):
    return [type(outcome.error) for outcome in outcomes if not outcome.succeeded]


def test_one_purchase_key_sent_ten_times_at_once_debits_once(run_together, inmate_money):
    now = timezone.now()
    inmate = InmateFactory()
    _fund(inmate, 50_000, now=now)

    product_priced(inmate.facility, 7_000)  # the goods and the kiosk, made before the threads
    kiosk_of(inmate.facility)

    outcomes = run_together(
        [lambda: kiosk_order(inmate, 7_000, idempotency_key="order-1", now=now)] * 10
    )

    assert all(outcome.succeeded for outcome in outcomes), _errors(outcomes)
    assert len({outcome.value.pk for outcome in outcomes}) == 1
    assert Transaction.objects.filter(kind=Transaction.Kind.PURCHASE).count() == 1
    money = inmate_money(inmate, now=now)
    assert (money.spendable_fen, money.sales_fen) == (43_000, 7_000)
    assert run_checks(now=now) == []


def test_one_purchase_key_sent_at_once_for_different_amounts_debits_only_one(
    run_together, inmate_money
):
    now = timezone.now()
    inmate = InmateFactory()
    _fund(inmate, 50_000, now=now)
    amounts_fen = [1_000 + 100 * n for n in range(10)]
    for amount_fen in amounts_fen:  # made before the threads
        product_priced(inmate.facility, amount_fen)
    kiosk_of(inmate.facility)

    outcomes = run_together(
        [
            lambda amount_fen=amount_fen: kiosk_order(
                inmate, amount_fen, idempotency_key="order-1", now=now
            )
            for amount_fen in amounts_fen
        ]
    )

    winners = [outcome.value.purchase for outcome in outcomes if outcome.succeeded]
    assert len(winners) == 1
    assert _errors(outcomes) == [errors.IdempotencyConflict] * 9
    won_fen = -winners[0].entries.get(account__kind=Account.Kind.SPENDABLE).amount_fen
    money = inmate_money(inmate, now=now)
    assert (money.spendable_fen, money.sales_fen) == (50_000 - won_fen, won_fen)
    assert run_checks(now=now) == []


def test_one_refund_key_sent_ten_times_at_once_refunds_once(run_together, inmate_money):
    now = timezone.now()
    inmate = InmateFactory()
    _fund(inmate, 50_000, now=now)
    purchase = post_purchase(inmate.pk, 10_000, idempotency_key="order-1", now=now)

    outcomes = run_together(
        [
            lambda: services.refund_purchase(
                idempotency_scope="system",
                purchase_id=purchase.pk,
                amount_fen=4_000,
                idempotency_key="refund-1",
                now=now,
            )
        ]
        * 10
    )

    assert all(outcome.succeeded for outcome in outcomes), _errors(outcomes)
    assert len({outcome.value.pk for outcome in outcomes}) == 1
    assert Transaction.objects.filter(refund_of=purchase).count() == 1
    money = inmate_money(inmate, now=now)
    assert (money.spendable_fen, money.sales_fen) == (44_000, 6_000)
    assert run_checks(now=now) == []


def test_refunds_racing_for_one_purchase_never_give_back_more_than_was_bought(
    run_together, inmate_money
):
    now = timezone.now()
    inmate = InmateFactory()
    _fund(inmate, 50_000, now=now)
    purchase = post_purchase(inmate.pk, 10_000, idempotency_key="order-1", now=now)

    outcomes = run_together(
        [
            lambda n=n: services.refund_purchase(
                idempotency_scope="system",
                purchase_id=purchase.pk,
                amount_fen=3_000,
                idempotency_key=f"refund-{n}",
                now=now,
            )
            for n in range(10)
        ]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 3
    assert _errors(outcomes) == [errors.RefundExceedsPurchase] * 7
    money = inmate_money(inmate, now=now)
    assert (money.spendable_fen, money.held_fen, money.sales_fen) == (49_000, 0, 1_000)
    assert run_checks(now=now) == []


# --- a crowd of random operations on one inmate -----------------------------------------


@dataclass
class Tally:
    """What one thread's successful calls say happened to the money."""

    reserved_fen: dict[int, int] = field(default_factory=dict)  # deposit id -> amount
    credited: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    purchased_fen: int = 0
    refunded_to_spendable_fen: int = 0
    refunded_to_held_fen: int = 0
    moved_to_held_fen: int = 0
    released_from_held_fen: int = 0
    refusals: Counter = field(default_factory=Counter)
    unexpected: list = field(default_factory=list)

    def merge(self, other: "Tally") -> None:
        self.reserved_fen |= other.reserved_fen
        self.credited |= other.credited
        self.failed |= other.failed
        self.purchased_fen += other.purchased_fen
        self.refunded_to_spendable_fen += other.refunded_to_spendable_fen
        self.refunded_to_held_fen += other.refunded_to_held_fen
        self.moved_to_held_fen += other.moved_to_held_fen
        self.released_from_held_fen += other.released_from_held_fen
        self.refusals += other.refusals
        self.unexpected += other.unexpected


class Crowd:
    """Random money operations on one inmate, sharing the deposits and purchases they made
    so that threads credit, fail and refund each other's."""

    EXPECTED_REFUSALS = {
        "reserve": (errors.MonthlyCapExceeded, errors.BalanceCapExceeded),
        "credit": (errors.DepositNotPending,),
        "fail": (errors.DepositNotPending,),
        "purchase": (errors.InsufficientFunds,),
        "refund": (errors.RefundExceedsPurchase,),
        "hold": (errors.InsufficientFunds,),
        "release_hold": (errors.InsufficientFunds, errors.BalanceCapExceeded),
        "replay_purchase": (),
    }
    WEIGHTS = {
        "reserve": 4,
        "credit": 4,
        "fail": 1,
        "purchase": 4,
        "refund": 3,
        "hold": 1,
        "release_hold": 2,
        "replay_purchase": 1,
    }

    PURCHASE_FEN = (500, 12_000, 100)  # a purchase's amounts: range(*PURCHASE_FEN)

    def __init__(self, *, inmate, staff, now):
        self.inmate, self.staff, self.now = inmate, staff, now
        self.pool_lock = threading.Lock()
        self.deposits: list[int] = []
        self.purchases: list[tuple[int, int, str]] = []  # (transaction id, amount, key)

    def _pick(self, rng, pool):
        with self.pool_lock:
            return rng.choice(pool) if pool else None

    def _remember(self, pool, item):
        with self.pool_lock:
            pool.append(item)

    def run(
        self,
        *,
        thread_number: int,
        operations: int,
        seed: int,
        first_operation: str,
        first_done: threading.Barrier | None = None,
    ) -> Tally:
        """``first_done``: every thread's first operation runs before any thread's second."""
        rng = random.Random(seed * 1_000 + thread_number)
        tally = Tally()
        names, weights = list(self.WEIGHTS), list(self.WEIGHTS.values())
        for step in range(operations):
            name = first_operation if step == 0 else rng.choices(names, weights)[0]
            key = f"t{thread_number}-{step}"
            try:
                getattr(self, name)(rng, tally, key)
            except self.EXPECTED_REFUSALS[name] as refusal:
                tally.refusals[type(refusal)] += 1
            except Exception as error:
                tally.unexpected.append((name, repr(error)))
            if step == 0 and first_done is not None:
                first_done.wait()
        return tally

    def reserve(self, rng, tally, key):
        amount_fen = rng.randrange(1_000, 10_000, 100)
        deposit = services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=self.inmate.pk,
            amount_fen=amount_fen,
            idempotency_key=key,
            now=self.now,
        )
        tally.reserved_fen[deposit.pk] = amount_fen
        self._remember(self.deposits, deposit.pk)

    def credit(self, rng, tally, key):
        deposit_id = self._pick(rng, self.deposits)
        if deposit_id is not None:
            services.credit_deposit(deposit_id=deposit_id, now=self.now)
            tally.credited.add(deposit_id)

    def fail(self, rng, tally, key):
        deposit_id = self._pick(rng, self.deposits)
        if deposit_id is not None:
            services.release_deposit(deposit_id=deposit_id, now=self.now)
            tally.failed.add(deposit_id)

    def purchase(self, rng, tally, key):
        amount_fen = rng.randrange(*self.PURCHASE_FEN)
        order = kiosk_order(self.inmate, amount_fen, idempotency_key=key, now=self.now)
        tally.purchased_fen += amount_fen
        self._remember(self.purchases, (order.purchase_id, amount_fen, key))

    def refund(self, rng, tally, key):
        picked = self._pick(rng, self.purchases)
        if picked is None:
            return
        purchase_id, amount_fen, _ = picked
        refund = services.refund_purchase(
            idempotency_scope="system",
            purchase_id=purchase_id,
            amount_fen=rng.randint(100, amount_fen),
            idempotency_key=key,
            now=self.now,
        )
        legs = dict(refund.entries.values_list("account__kind", "amount_fen"))
        tally.refunded_to_spendable_fen += legs.get(Account.Kind.SPENDABLE, 0)
        tally.refunded_to_held_fen += legs.get(Account.Kind.HELD, 0)

    def hold(self, rng, tally, key):
        amount_fen = rng.randrange(500, 5_000, 100)
        services.hold_funds(
            inmate_id=self.inmate.pk,
            amount_fen=amount_fen,
            reason="investigation",
            staff_id=self.staff.pk,
            idempotency_key=key,
            now=self.now,
        )
        tally.moved_to_held_fen += amount_fen

    def release_hold(self, rng, tally, key):
        amount_fen = rng.randrange(500, 5_000, 100)
        services.release_hold(
            inmate_id=self.inmate.pk,
            amount_fen=amount_fen,
            reason="investigation closed",
            staff_id=self.staff.pk,
            idempotency_key=key,
            now=self.now,
        )
        tally.released_from_held_fen += amount_fen

    def replay_purchase(self, rng, tally, key):
        picked = self._pick(rng, self.purchases)
        if picked is None:
            return
        purchase_id, amount_fen, purchase_key = picked
        replayed = kiosk_order(self.inmate, amount_fen, idempotency_key=purchase_key, now=self.now)
        if replayed.purchase_id != purchase_id:
            tally.unexpected.append(("replay_purchase", f"{replayed.purchase_id} != {purchase_id}"))


def test_random_money_operations_from_sixteen_threads_keep_every_invariant(
    run_together, inmate_money
):
    now = timezone.now()
    # Small caps, so that both bind often.
    facility = FacilityFactory(
        balance_cap_fen=40_000,
        monthly_cap_fen=80_000,
        deposit_fee_fixed_fen=100,
        deposit_fee_rate_bp=100,
    )
    inmate = InmateFactory(facility=facility)
    staff = StaffFactory(facilities=[facility])
    crowd = Crowd(inmate=inmate, staff=staff, now=now)
    # Start exactly at the balance cap with 20,000 fen of the month left and four purchases
    # to refund: each thread's first operation is a refund (it overflows into held money) or
    # a deposit (it is refused at the balance cap), whatever order they run in, because none
    # of the first operations lowers spendable + held + pending, and no thread goes on to its
    # second before all have done their first.
    for amount_fen in range(*Crowd.PURCHASE_FEN):  # the kiosk's goods, made before the threads
        product_priced(facility, amount_fen)
    _fund(inmate, 30_000, now=now, key="start-1")
    for n in range(4):
        order = kiosk_order(inmate, 5_000, idempotency_key=f"start-order-{n}", now=now)
        crowd.purchases.append((order.purchase_id, 5_000, f"start-order-{n}"))
    _fund(inmate, 30_000, now=now, key="start-2")
    start = inmate_money(inmate, now=now)
    assert (start.spendable_fen, start.balance_cap_fen, start.month_received_fen) == (
        40_000,
        40_000,
        60_000,
    )
    seed = random.randrange(10**6)
    # Without it, a fast thread's second operation (a purchase) could lower spendable money
    # before a slow thread's first refund, which would then not overflow.
    first_done = threading.Barrier(16, timeout=60)

    outcomes = run_together(
        [
            lambda n=n: crowd.run(
                thread_number=n,
                operations=40,
                seed=seed,
                first_operation="refund" if n % 2 else "reserve",
                first_done=first_done,
            )
            for n in range(16)
        ]
    )

    assert all(outcome.succeeded for outcome in outcomes), _errors(outcomes)
    tally = Tally()
    for outcome in outcomes:
        tally.merge(outcome.value)
    assert tally.unexpected == [], f"seed {seed}"
    assert not tally.credited & tally.failed
    credited_fen = sum(tally.reserved_fen[deposit_id] for deposit_id in tally.credited)
    pending_fen = sum(
        amount_fen
        for deposit_id, amount_fen in tally.reserved_fen.items()
        if deposit_id not in tally.credited | tally.failed
    )
    refunded_fen = tally.refunded_to_spendable_fen + tally.refunded_to_held_fen

    money = inmate_money(inmate, now=now)
    assert run_checks(now=now) == []
    assert money.spendable_fen == (
        40_000
        + credited_fen
        - tally.purchased_fen
        + tally.refunded_to_spendable_fen
        - tally.moved_to_held_fen
        + tally.released_from_held_fen
    )
    assert money.held_fen == (
        tally.refunded_to_held_fen + tally.moved_to_held_fen - tally.released_from_held_fen
    )
    assert money.pending_fen == money.month_reserved_fen == pending_fen
    assert money.month_received_fen == 60_000 + credited_fen
    assert money.sales_fen == 20_000 + tally.purchased_fen - refunded_fen
    assert (money.deposits_credited, money.deposits_failed) == (
        2 + len(tally.credited),
        len(tally.failed),
    )
    assert money.spendable_fen >= 0
    assert money.spendable_fen + money.pending_fen <= money.balance_cap_fen
    assert money.month_received_fen + money.month_reserved_fen <= money.monthly_cap_fen
    # The crowd really ran into the rules it races on.
    assert tally.refunded_to_held_fen > 0
    assert tally.refusals[errors.BalanceCapExceeded] > 0
    assert tally.refusals[errors.MonthlyCapExceeded] > 0, f"seed {seed}"
    assert tally.refusals[errors.InsufficientFunds] > 0, f"seed {seed}"
