"""A refused order is an answer too: a replay of its key gets the same status and body back,
whatever changed since (money came in, stock came back), and the key never places another
order. A body refused as invalid (400) was never taken up, so its key stays free."""

import pytest

from catalog.models import Order, RefusedOrder
from commissary import errors
from ledger.models import Transaction
from tests.catalog.helpers import funded, order_from_kiosk, product_at, unfunded_shop
from tests.concurrency.conftest import _run_together
from tests.factories import FacilityFactory

from .conftest import Kiosk, error_of


def test_a_refusal_is_answered_again_as_it_was_after_money_came_in(signed_in, inmate, facility):
    funded(inmate, 500)
    product = product_at(facility, price_fen=1_000)
    items = [{"product_id": product.pk, "quantity": 1}]
    first = signed_in.order(items, "poor")
    assert first.status_code == 422
    assert error_of(first) == "insufficient_funds"

    funded(inmate, 10_000)
    again = signed_in.order(items, "poor")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert not Order.objects.exists()
    assert not Transaction.objects.filter(kind="purchase").exists()
    refused = RefusedOrder.objects.get()
    assert (refused.inmate_id, refused.device_id, refused.code) == (
        inmate.pk,
        signed_in.device.pk,
        "insufficient_funds",
    )

    assert signed_in.order(items, "poor, new key").status_code == 201


def test_a_replay_gets_the_first_refusals_words_in_any_language(signed_in, inmate, facility):
    product = product_at(facility, price_fen=1_000, stock=0)
    items = [{"product_id": product.pk, "quantity": 1}]
    first = signed_in.order(items, "gone", {"Accept-Language": "zh-hans"})
    again = signed_in.order(items, "gone", {"Accept-Language": "en"})
    assert first.status_code == again.status_code == 422
    assert error_of(first) == "out_of_stock"
    assert again.json() == first.json()


def test_a_refused_key_with_another_body_is_a_conflict(signed_in, inmate, facility):
    product = product_at(facility, price_fen=1_000)
    signed_in.order([{"product_id": product.pk, "quantity": 1}], "k")
    funded(inmate, 10_000)
    answer = signed_in.order([{"product_id": product.pk, "quantity": 2}], "k")
    assert answer.status_code == 409
    assert error_of(answer) == "idempotency_conflict"
    assert not Order.objects.exists()


def test_a_product_not_sold_here_is_kept_as_a_404(signed_in, inmate):
    elsewhere = product_at(FacilityFactory())
    items = [{"product_id": elsewhere.pk, "quantity": 1}]
    first = signed_in.order(items, "where")
    again = signed_in.order(items, "where")
    assert first.status_code == again.status_code == 404
    assert again.json() == first.json()
    assert RefusedOrder.objects.get().code == "not_found"


def test_an_invalid_body_is_not_kept_so_its_key_stays_free(signed_in, inmate, facility):
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=1_000, max_per_order=2)
    too_many = signed_in.order([{"product_id": product.pk, "quantity": 3}], "fix me")
    assert too_many.status_code == 400
    assert not RefusedOrder.objects.exists()
    assert signed_in.order([{"product_id": product.pk, "quantity": 2}], "fix me").status_code == 201


def test_a_refused_key_of_one_kiosk_does_not_touch_another_kiosks(facility, inmate):
    product = product_at(facility, price_fen=1_000)
    one, two = Kiosk(facility, "One"), Kiosk(facility, "Two")
    one.sign_in(inmate)
    two.sign_in(inmate)
    assert one.order([{"product_id": product.pk, "quantity": 1}], "shared").status_code == 422
    funded(inmate, 10_000)
    assert two.order([{"product_id": product.pk, "quantity": 1}], "shared").status_code == 201


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_the_same_refused_key_ten_times_at_once_is_kept_once():
    inmate, device, product = unfunded_shop()
    outcomes = _run_together([lambda: order_from_kiosk(inmate, device, product, "ten")] * 10)
    assert not any(outcome.succeeded for outcome in outcomes)
    assert {outcome.error.code for outcome in outcomes} == {"insufficient_funds"}
    kept = RefusedOrder.objects.get()
    # Each request that found the refusal kept got its words back, as they were kept.
    repeated = [o.error for o in outcomes if isinstance(o.error, errors.RepeatedRefusal)]
    assert {error.message for error in repeated} <= {kept.message}


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_a_refusal_and_money_racing_on_one_key_give_one_answer_for_every_replay():
    """Replays of a key race with the money that would let it through: whichever answer the
    key got first (the refusal, or the order once the money is in), every replay gets it."""
    inmate, device, product = unfunded_shop()

    def order():
        return order_from_kiosk(inmate, device, product, "race")

    outcomes = _run_together([order] * 6 + [lambda: funded(inmate, 10_000)])
    replays = outcomes[:6]
    final = [outcome.value.pk if outcome.succeeded else outcome.error.code for outcome in replays]
    kept_order = Order.objects.filter(idempotency_key="race").first()
    kept_refusal = RefusedOrder.objects.filter(idempotency_key="race").first()
    assert (kept_order is None) != (kept_refusal is None)
    if kept_order is not None:
        # a replay refused before the money came in, that keeps its refusal only after the
        # key placed its order, answers with the order
        assert set(final) == {kept_order.pk}
        assert order().pk == kept_order.pk
    else:
        assert set(final) == {"insufficient_funds"}
        with pytest.raises(errors.DomainError) as again:
            order()
        assert again.value.code == "insufficient_funds"
    assert Transaction.objects.filter(kind="purchase").count() == (kept_order is not None)


@pytest.mark.parametrize("role", ("clerk", "auditor"))
def test_staff_see_refused_orders_of_their_facility_only(db, client, role):
    from tests.admin.conftest import make_site

    site_a, site_b = make_site("RA"), make_site("RB")
    for site in (site_a, site_b):
        inmate, device, product = unfunded_shop(site.facility)
        with pytest.raises(errors.InsufficientFunds):
            order_from_kiosk(inmate, device, product, f"broke-{site.facility.code}")
    client.force_login(site_a.staff[role])
    listing = client.get("/admin/catalog/refusedorder/")
    assert listing.status_code == 200
    assert site_a.inmate.inmate_number in listing.content.decode()
    assert site_b.inmate.inmate_number not in listing.content.decode()
    b_refusal = RefusedOrder.objects.get(inmate=site_b.inmate)
    assert client.get(f"/admin/catalog/refusedorder/{b_refusal.pk}/change/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_orders_and_refusals_take_turns_on_one_connection():
    """A refusal rolls the order's transaction back, and the driver then drops the statements
    it had prepared on the connection (commissary.db); the next order prepares them again."""
    inmate, device, product = unfunded_shop()
    funded(inmate, 3_000)
    answers = []
    for n in range(5):  # 10 yuan each: three are paid, then the money has run out
        try:
            answers.append(order_from_kiosk(inmate, device, product, f"turn-{n}").pk)
        except errors.InsufficientFunds:
            answers.append("refused")
        if n == 3:
            funded(inmate, 1_000)
    assert answers[3] == "refused" and all(isinstance(a, int) for a in answers[:3] + answers[4:])
    assert Order.objects.count() == 4 and RefusedOrder.objects.count() == 1
