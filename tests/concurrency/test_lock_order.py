"""Staff operations on inmates and facilities racing the money traffic, on PostgreSQL.

The lock order of ``ledger.locks``: an inmate's account rows first, then what the operation
writes; parent rows (inmate, facility) only ``FOR NO KEY UPDATE``, which does not conflict
with the ``FOR KEY SHARE`` that every ledger insert takes on them. Transfers, releases and
cap changes that locked the inmate or facility row ``FOR UPDATE`` before the accounts
deadlocked against ordinary deposits and purchases (31 deadlocks in 455 operations over twenty
seconds). Here they run against a stream of deposits and purchases on the same inmates and
facilities, for a few seconds, and must meet no deadlock, no error but a domain refusal, and
leave a ledger that reconciles, with every cap carried on the account rows the facility's own
and every fen of held money accounted for. Either half of the order undone makes this fail:
a transfer that takes the inmate row ``select_for_update()`` before the ledger, or parent
rows locked ``FOR UPDATE`` instead of ``FOR NO KEY UPDATE``, met 3 to 5 deadlocks a run.
"""

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import pytest
from django.db import OperationalError

from commissary import errors
from facilities import services as facility_services
from facilities.models import Facility, Inmate
from ledger import services
from ledger.models import Account, Entry, Transaction
from ledger.reconciliation import run_checks
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.ledger.helpers import post_purchase

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]

SECONDS = 4.0
INMATES = 12
LOW_CAP_FEN, HIGH_CAP_FEN = 40_000, 80_000


def _is_deadlock(error: BaseException) -> bool:
    return isinstance(error, psycopg.errors.DeadlockDetected) or (
        isinstance(error, OperationalError)
        and isinstance(error.__cause__, psycopg.errors.DeadlockDetected)
    )


@dataclass
class Tally:
    """What one thread was told: the money it moved, what it did, what went wrong."""

    credited_fen: int = 0
    purchased_fen: int = 0
    paid_out_fen: int = 0
    done: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)
    deadlocks: int = 0
    unexpected: list = field(default_factory=list)


class Traffic:
    """The threads' shared world: two facilities, twelve inmates, and where each one is."""

    def __init__(self, *, facilities, inmates, staff, seconds):
        self.facilities = facilities
        self.inmates = inmates
        self.staff = staff
        self.deadline = time.monotonic() + seconds
        self.where = {inmate.pk: inmate.facility_id for inmate in inmates}  # by the transfers
        self.to_release = [inmate.pk for inmate in inmates[::4]]  # three of the twelve
        self.cap_of = {facility.pk: facility.balance_cap_fen for facility in facilities}

    def keep_going(self) -> bool:
        return time.monotonic() < self.deadline

    def run(self, work, *, seed: int) -> Tally:
        rng = random.Random(seed)
        tally = Tally()
        step = 0
        while self.keep_going():
            step += 1
            try:
                name = work(rng, tally, f"s{seed}-{step}")
            except errors.DomainError as refusal:
                tally.refusals[type(refusal).__name__] += 1
            except Exception as error:
                if _is_deadlock(error):
                    tally.deadlocks += 1
                else:
                    tally.unexpected.append(repr(error))
            else:
                if name:
                    tally.done[name] += 1
        return tally

    # --- the money stream -----------------------------------------------------------------

    def money(self, rng, tally, key):
        inmate = rng.choice(self.inmates)
        if rng.random() < 0.5:
            reserved = services.reserve_deposit(
                idempotency_scope="depositor:1",
                inmate_id=inmate.pk,
                amount_fen=rng.randrange(1_000, 8_000, 100),
                idempotency_key=key,
            )
            credited = services.credit_deposit(deposit_id=reserved.pk)
            tally.credited_fen += credited.amount_fen
            return "deposit"
        amount_fen = rng.randrange(500, 6_000, 100)
        post_purchase(inmate.pk, amount_fen, idempotency_key=key)
        tally.purchased_fen += amount_fen
        return "purchase"

    # --- staff operations -----------------------------------------------------------------

    def transfer(self, rng, tally, key):
        inmate_id = rng.choice(self.inmates).pk
        first, second = self.facilities
        to_facility = second if self.where[inmate_id] == first.pk else first
        facility_services.transfer_inmate(
            inmate_id=inmate_id,
            to_facility=to_facility,
            staff_id=self.staff.pk,
            idempotency_key=key,
        )
        self.where[inmate_id] = to_facility.pk
        return "transfer"

    def release(self, rng, tally, key):
        time.sleep(rng.uniform(0.1, 0.6))  # spread over the run, amid the traffic
        if not self.to_release:
            return None
        inmate_id = self.to_release.pop()
        facility_services.release_inmate(
            inmate_id=inmate_id, staff_id=self.staff.pk, idempotency_key=key
        )
        paid = Entry.objects.filter(
            transaction__inmate_id=inmate_id,
            transaction__kind=Transaction.Kind.PAYOUT,
            account__kind=Account.Kind.PAYOUTS,
        ).values_list("amount_fen", flat=True)
        tally.paid_out_fen += sum(paid)
        return "release"

    def change_caps(self, rng, tally, key):
        # Each facility goes low, high, low...: a lowering is refused while some inmate there
        # holds more than the low cap, and then tried again.
        facility = rng.choice(self.facilities)
        lower = self.cap_of[facility.pk] == HIGH_CAP_FEN
        balance_cap_fen = LOW_CAP_FEN if lower else HIGH_CAP_FEN
        facility_services.update_facility_caps(
            facility_id=facility.pk,
            monthly_cap_fen=5_000_000 if lower else 10_000_000,
            balance_cap_fen=balance_cap_fen,
        )
        self.cap_of[facility.pk] = balance_cap_fen
        return "lower caps" if lower else "raise caps"


def _seed(facilities):
    inmates = [InmateFactory(facility=facilities[n % 2]) for n in range(INMATES)]
    for inmate in inmates:
        reserved = services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=20_000,
            idempotency_key=f"start-{inmate.pk}",
        )
        services.credit_deposit(deposit_id=reserved.pk)
    return inmates


def test_transfers_releases_and_cap_changes_beside_deposits_and_purchases_never_deadlock(
    run_together,
):
    # Releases here are about lock order, not approval: no payout reaches the threshold.
    facilities = [
        FacilityFactory(
            balance_cap_fen=HIGH_CAP_FEN,
            monthly_cap_fen=10_000_000,
            adjustment_approval_threshold_fen=HIGH_CAP_FEN,
        )
        for _ in range(2)
    ]
    inmates = _seed(facilities)
    staff = StaffFactory(facilities=facilities)
    traffic = Traffic(facilities=facilities, inmates=inmates, staff=staff, seconds=SECONDS)
    seed = random.randrange(10**6)
    works = [traffic.money] * 4 + [traffic.transfer, traffic.release, traffic.change_caps]

    outcomes = run_together(
        [
            lambda work=work, n=n: traffic.run(work, seed=seed * 100 + n)
            for n, work in enumerate(works)
        ]
    )

    assert all(outcome.succeeded for outcome in outcomes), [o.error for o in outcomes]
    tallies = [outcome.value for outcome in outcomes]
    done = sum((tally.done for tally in tallies), Counter())
    deadlocks = sum(tally.deadlocks for tally in tallies)
    unexpected = [error for tally in tallies for error in tally.unexpected]
    print(
        f"seed {seed}: {dict(done)}, refusals "
        f"{dict(sum((t.refusals for t in tallies), Counter()))}, {deadlocks} deadlocks"
    )
    assert deadlocks == 0, f"{deadlocks} deadlocks in {sum(done.values())} operations"
    assert unexpected == [], f"seed {seed}"
    # The race really ran: every kind of operation succeeded alongside the others.
    for name in ("deposit", "purchase", "transfer", "release", "raise caps", "lower caps"):
        assert done[name] > 0, f"no {name} succeeded (seed {seed}): {dict(done)}"

    assert run_checks() == []
    # Every fen is where the threads were told it went.
    credited_fen = sum(tally.credited_fen for tally in tallies)
    purchased_fen = sum(tally.purchased_fen for tally in tallies)
    paid_out_fen = sum(tally.paid_out_fen for tally in tallies)
    inmates_money_fen = sum(
        Account.objects.filter(kind__in=Account.INMATE_KINDS).values_list("balance_fen", flat=True)
    )
    assert inmates_money_fen == INMATES * 20_000 + credited_fen - purchased_fen - paid_out_fen
    _assert_caps_and_held_money(facilities)


def _assert_caps_and_held_money(facilities):
    """Each open spendable row carries its facility's current balance cap and keeps
    spendable + pending under it; its ledger sits at the inmate's facility; held money is
    exactly what transfers moved over the cap (nothing else here holds money); a released
    inmate has nothing left and nothing pending."""
    caps = dict(
        Facility.objects.filter(pk__in=[f.pk for f in facilities]).values_list(
            "pk", "balance_cap_fen"
        )
    )
    for account in Account.objects.filter(kind=Account.Kind.SPENDABLE).select_related("inmate"):
        inmate = account.inmate
        assert account.facility_id == inmate.facility_id, inmate
        held = Account.objects.get(inmate=inmate, kind=Account.Kind.HELD)
        moved_to_held_fen = sum(
            Entry.objects.filter(
                account=held, transaction__kind=Transaction.Kind.TRANSFER_EXCESS
            ).values_list("amount_fen", flat=True)
        )
        if inmate.status == Inmate.Status.RELEASED:
            assert account.is_closed and held.is_closed
            assert (account.balance_fen, account.pending_fen, held.balance_fen) == (0, 0, 0)
            assert not inmate.deposits.filter(status="created").exists()
            continue
        assert not account.is_closed
        assert account.balance_cap_fen == caps[inmate.facility_id], inmate
        assert account.balance_fen + account.pending_fen <= account.balance_cap_fen
        assert held.balance_fen == moved_to_held_fen, inmate
