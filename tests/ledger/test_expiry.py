"""Unpaid deposits expire and give their room under both caps back (invariant 8: nothing
stays in limbo)."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ledger import batch, schedules, services
from ledger.models import Deposit
from ledger.reconciliation import run_checks
from ledger.schedules import ensure_schedules
from ledger.selectors import inmate_balance
from tests.factories import InmateFactory

from .helpers import deposit, key

pytestmark = pytest.mark.django_db


def test_stale_reservations_expire_and_release_their_room(assert_ledger_consistent):
    inmate, other = InmateFactory(), InmateFactory()
    long_ago = timezone.now() - dt.timedelta(hours=2)
    stale = [
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=i.pk,
            amount_fen=a,
            idempotency_key=key(),
            now=long_ago,
        )
        for i, a in ((inmate, 60_000), (inmate, 30_000), (other, 5_000))
    ]
    fresh = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=10_000,
        idempotency_key=key(),
    )
    assert {f.check for f in run_checks()} == {"reservation_outlived_expiry"}

    run = batch.expire_stale_deposits()

    assert run.counts == {"deposits_expired": 3}
    assert {d.status for d in Deposit.objects.filter(pk__in=[d.pk for d in stale])} == {"expired"}
    assert Deposit.objects.get(pk=fresh.pk).status == "created"
    balance = inmate_balance(inmate=inmate)
    assert (balance.pending_fen, balance.month_reserved_fen) == (10_000, 10_000)
    assert inmate_balance(inmate=other).pending_fen == 0
    deposit(inmate, 90_000)  # the expired room is usable again
    assert_ledger_consistent()


def test_expiry_twice_expires_once_and_never_touches_credited_deposits():
    inmate = InmateFactory()
    long_ago = timezone.now() - dt.timedelta(hours=2)
    paid = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=100,
        idempotency_key=key(),
        now=long_ago,
    )
    services.credit_deposit(deposit_id=paid.pk)
    services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=200,
        idempotency_key=key(),
        now=long_ago,
    )
    assert batch.expire_stale_deposits().counts == {"deposits_expired": 1}
    assert batch.expire_stale_deposits().counts == {"deposits_expired": 0}
    assert Deposit.objects.get(pk=paid.pk).status == "credited"
    assert inmate_balance(inmate=inmate).spendable_fen == 100


def test_expiry_works_through_many_chunks():
    inmates = InmateFactory.create_batch(5)
    long_ago = timezone.now() - dt.timedelta(hours=2)
    for inmate in inmates:
        services.reserve_deposit(
            idempotency_scope="depositor:1",
            inmate_id=inmate.pk,
            amount_fen=100,
            idempotency_key=key(),
            now=long_ago,
        )
    assert batch.expire_stale_deposits(chunk_size=2).counts == {"deposits_expired": 5}
    assert not Deposit.objects.filter(status="created").exists()


def _reserved_expired_ago(inmate, minutes: int) -> Deposit:
    """A reservation whose payment window closed ``minutes`` ago."""
    return services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=100,
        idempotency_key=key(),
        now=timezone.now() - services.DEPOSIT_RESERVATION_TTL - dt.timedelta(minutes=minutes),
    )


def _late_reservations() -> set[str]:
    return {f.subject for f in run_checks() if f.check == "reservation_outlived_expiry"}


def test_a_reservation_expired_within_the_expiry_interval_is_not_a_finding_yet():
    assert schedules.expiry_interval() == dt.timedelta(minutes=5)
    inmate = InmateFactory()
    just_expired = _reserved_expired_ago(inmate, 3)  # the next expiry run's work
    forgotten = _reserved_expired_ago(inmate, 7)  # an expiry run should have taken it

    assert _late_reservations() == {f"deposit {forgotten.pk}"}
    assert Deposit.objects.get(pk=just_expired.pk).status == "created"


def test_the_grace_follows_the_expiry_schedule_as_staff_set_it():
    ensure_schedules()
    expiry = PeriodicTask.objects.get(task=schedules.EXPIRY_TASK)
    expiry.interval = IntervalSchedule.objects.create(every=15, period=IntervalSchedule.MINUTES)
    expiry.save()
    inmate = InmateFactory()
    _reserved_expired_ago(inmate, 10)
    forgotten = _reserved_expired_ago(inmate, 20)

    assert schedules.expiry_interval() == dt.timedelta(minutes=15)
    assert _late_reservations() == {f"deposit {forgotten.pk}"}


def test_the_reservation_window_is_the_deposit_reservation_minutes_setting():
    manage_py = Path(__file__).resolve().parents[2] / "manage.py"
    shown = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [
            sys.executable,
            str(manage_py),
            "shell",
            "-c",
            "from ledger import services; print(services.DEPOSIT_RESERVATION_TTL.total_seconds())",
        ],
        env={**os.environ, "DEPOSIT_RESERVATION_MINUTES": "45"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.split()[-1] == str(45 * 60.0)
    assert dt.timedelta(minutes=30) == services.DEPOSIT_RESERVATION_TTL  # the default
