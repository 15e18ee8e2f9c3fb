"""Orders and sign-ins racing on PostgreSQL: real threads behind a barrier, the totals read
back from the database afterwards. Money, stock, spending limits, the PIN lock-out and
idempotency keys each hold exactly, however many requests arrive at the same instant."""

import threading
import time

import pytest
from django.db import connection
from django.db.models import Sum

from catalog.models import FacilityProduct, Order
from commissary import errors
from facilities import services as facility_services
from facilities.models import Inmate
from kiosk import services as kiosk_services
from kiosk.models import KioskSession, PinFailureCounter
from ledger.models import Account, Transaction
from ledger.reconciliation import run_checks
from tests.catalog.helpers import funded, grade_at, order_from_kiosk, product_at
from tests.concurrency.conftest import _run_together
from tests.factories import FacilityFactory, InmateFactory

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def _failures(outcomes):
    return sorted(type(outcome.error).__name__ for outcome in outcomes if not outcome.succeeded)


def _spendable(inmate):
    return Account.objects.get(inmate=inmate, kind="spendable").balance_fen


def test_twenty_orders_at_once_from_an_inmate_whose_money_covers_five_make_exactly_five():
    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility), 5_000)
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    product = product_at(facility, price_fen=1_000, stock=100)

    outcomes = _run_together(
        [lambda n=n: order_from_kiosk(inmate, device, product, f"r{n}") for n in range(20)]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 5
    assert _failures(outcomes) == ["InsufficientFunds"] * 15
    assert _spendable(inmate) == 0
    assert Order.objects.filter(inmate=inmate).count() == 5
    assert Transaction.objects.filter(inmate=inmate, kind="purchase").count() == 5
    assert FacilityProduct.objects.get(product=product).stock == 95
    assert run_checks() == []


def test_twenty_inmates_racing_for_the_last_three_units_get_exactly_three():
    facility = FacilityFactory()
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    product = product_at(facility, price_fen=800, stock=3)
    inmates = [funded(InmateFactory(facility=facility), 2_000) for _ in range(20)]

    outcomes = _run_together(
        [lambda i=i: order_from_kiosk(i, device, product, f"last-{i.pk}") for i in inmates]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 3
    assert _failures(outcomes) == ["OutOfStock"] * 17
    assert FacilityProduct.objects.get(product=product).stock == 0
    assert Order.objects.count() == 3
    buyers = set(Order.objects.values_list("inmate_id", flat=True))
    spent = {i.pk: 2_000 - _spendable(i) for i in inmates}
    assert {pk for pk, fen in spent.items() if fen} == buyers
    assert sum(spent.values()) == 3 * 800
    assert run_checks() == []


def test_the_spending_limit_holds_under_the_same_race():
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    inmate.grade = grade_at(facility, limit_fen=7_000, period="week")
    inmate.save(update_fields=["grade"])
    funded(inmate, 50_000)
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    product = product_at(facility, price_fen=1_000, stock=100)

    outcomes = _run_together(
        [lambda n=n: order_from_kiosk(inmate, device, product, f"w{n}") for n in range(20)]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 7
    assert _failures(outcomes) == ["SpendingLimitExceeded"] * 13
    assert Order.objects.aggregate(total=Sum("total_fen"))["total"] == 7_000
    assert _spendable(inmate) == 43_000
    assert run_checks() == []


def test_twenty_wrong_pins_at_once_from_different_kiosks_lock_the_inmate_out_after_five():
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    devices = [
        facility_services.register_kiosk_device(facility=facility, name=f"K{n}")[0]
        for n in range(20)
    ]

    outcomes = _run_together(
        [
            lambda d=d: kiosk_services.sign_in(
                device=d, inmate_number=inmate.inmate_number, pin="0000"
            )
            for d in devices
        ]
    )

    assert _failures(outcomes) == ["InvalidCredentials"] * 5 + ["LockedOut"] * 15
    assert PinFailureCounter.objects.get(inmate=inmate).locked_until is not None
    with pytest.raises(errors.LockedOut):
        kiosk_services.sign_in(device=devices[0], inmate_number=inmate.inmate_number, pin="1234")
    assert not KioskSession.objects.exists()


def test_thirty_sign_ins_at_once_with_the_right_pin_among_them_check_five_pins_and_sign_in_none(
    monkeypatch,
):
    """A burst of guesses: 29 different wrong PINs and the right one, all at once. Each attempt
    is counted before its PIN is checked, so only the first five counted are checked at all,
    and the right PIN, if it is one of them, is refused because the burst has locked the inmate
    out by the time it would sign in (its check is held until the 29 others have finished, the
    moment most favourable to the guesser)."""
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    devices = [
        facility_services.register_kiosk_device(facility=facility, name=f"K{n}")[0]
        for n in range(3)
    ]
    checked, finished = [], []
    guard = threading.Lock()
    check_pin = Inmate.check_pin

    def counting_check(self, pin):
        with guard:
            checked.append(pin)
        if pin == "1234":
            deadline = time.monotonic() + 30
            while len(finished) < 29 and time.monotonic() < deadline:
                time.sleep(0.01)
        return check_pin(self, pin)

    monkeypatch.setattr(Inmate, "check_pin", counting_check)
    pins = [f"{n:04d}" for n in range(5000, 5029)] + ["1234"]

    def attempt(index, pin):
        try:
            return kiosk_services.sign_in(
                device=devices[index % 3], inmate_number=inmate.inmate_number, pin=pin
            )
        finally:
            if pin != "1234":
                with guard:
                    finished.append(pin)

    outcomes = _run_together([lambda n=n, pin=pin: attempt(n, pin) for n, pin in enumerate(pins)])

    assert len(checked) == 5, checked
    assert not any(outcome.succeeded for outcome in outcomes)
    assert isinstance(outcomes[-1].error, errors.LockedOut)
    assert outcomes[-1].error.retry_after_seconds > 0
    wrong_checked = len([pin for pin in checked if pin != "1234"])
    assert _failures(outcomes) == sorted(
        ["InvalidCredentials"] * wrong_checked + ["LockedOut"] * (30 - wrong_checked)
    )
    counter = PinFailureCounter.objects.get(inmate=inmate)
    assert counter.failures == 30
    assert counter.locked_until is not None
    assert not KioskSession.objects.exists()
    monkeypatch.setattr(Inmate, "check_pin", check_pin)
    with pytest.raises(errors.LockedOut):
        kiosk_services.sign_in(device=devices[0], inmate_number=inmate.inmate_number, pin="1234")


def test_the_same_idempotency_key_twice_at_once_makes_one_order():
    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility), 10_000)
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    product = product_at(facility, price_fen=1_000, stock=100)

    outcomes = _run_together(
        [lambda: order_from_kiosk(inmate, device, product, "twin") for _ in range(2)]
    )

    assert all(outcome.succeeded for outcome in outcomes)
    assert outcomes[0].value.pk == outcomes[1].value.pk
    assert outcomes[0].value.placed_response == outcomes[1].value.placed_response
    assert Order.objects.count() == 1
    assert Transaction.objects.filter(kind="purchase").count() == 1
    assert _spendable(inmate) == 9_000
    assert FacilityProduct.objects.get(product=product).stock == 99


def test_an_order_takes_the_inmates_account_lock_before_any_stock_row():
    """The lock order that keeps orders and every other money operation deadlock-free."""
    from django.test.utils import CaptureQueriesContext

    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility), 10_000)
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    product = product_at(facility, price_fen=1_000, stock=100)
    with CaptureQueriesContext(connection) as queries:
        order_from_kiosk(inmate, device, product, "order-of-locks")
    statements = [query["sql"] for query in queries.captured_queries]
    locks = [
        index
        for index, sql in enumerate(statements)
        if "FOR UPDATE" in sql
        or "FOR NO KEY UPDATE" in sql
        or sql.lstrip().upper().startswith(("UPDATE", "INSERT"))
    ]
    first = statements[locks[0]]
    assert "ledger_account" in first and "FOR NO KEY UPDATE OF s, h" in first
    stock_lock = next(i for i in locks if "catalog_facilityproduct" in statements[i])
    assert stock_lock > locks[0]
