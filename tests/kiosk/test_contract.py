"""The kiosk API contract (DESIGN.md, "Kiosk API contract" and "Kiosk API details"): one test
per endpoint's answer and per error code, each checking the status, the envelope and what the
database holds afterwards."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from catalog.models import Order, OrderItem, Restriction
from facilities import services as facility_services
from kiosk.authentication import SignInThrottle
from kiosk.models import KioskSession, PinFailureCounter
from ledger.models import Transaction
from tests.catalog.helpers import funded, grade_at, product_at, stock_of
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import set_frozen

from .conftest import API, Kiosk, error_of

# --- device keys ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Kiosk", "Kiosk wrong-key", "Bearer whatever", "kiosk_abc"],
)
def test_a_request_without_a_valid_device_key_gets_401_not_authenticated(kiosk, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    answer = kiosk.client.get(API + "catalog", **headers)
    assert answer.status_code == 401
    assert error_of(answer) == "not_authenticated"
    assert answer["WWW-Authenticate"].startswith("Kiosk")


def test_a_revoked_key_gets_401_and_its_sessions_die_with_it(signed_in):
    facility_services.revoke_kiosk_device(device_id=signed_in.device.pk)
    answer = signed_in.get("me/balance")
    assert answer.status_code == 401
    assert error_of(answer) == "not_authenticated"


# --- sessions ---------------------------------------------------------------------------


def test_sign_in_by_inmate_number_opens_a_session_bound_to_the_kiosk(kiosk, inmate):
    answer = kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "1234"})
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"session", "expires_at", "inmate"}
    assert body["inmate"] == {
        "id": inmate.pk,
        "inmate_number": inmate.inmate_number,
        "name": f"{inmate.surname}{inmate.given_name}",
    }
    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    assert expires_at.utcoffset() == dt.timedelta(hours=8)  # the facility's offset
    assert dt.timedelta(minutes=9) < expires_at - timezone.now() <= dt.timedelta(minutes=10)
    session = KioskSession.objects.get()
    assert (session.device_id, session.inmate_id, session.ended_at) == (
        kiosk.device.pk,
        inmate.pk,
        None,
    )
    assert body["session"] not in session.token_hash  # stored hashed only


def test_sign_in_by_the_card_token_works_like_the_number(kiosk, inmate):
    answer = kiosk.post("sessions", {"card": inmate.card_token, "pin": "1234"})
    assert answer.status_code == 201
    assert answer.json()["inmate"]["id"] == inmate.pk


@pytest.mark.parametrize(
    "body",
    [
        {"inmate_number": "N-no-such", "pin": "1234"},
        {"card": "no-such-card", "pin": "1234"},
        "wrong-pin",
    ],
)
def test_wrong_number_card_or_pin_all_get_401_invalid_credentials(kiosk, inmate, body):
    if body == "wrong-pin":
        body = {"inmate_number": inmate.inmate_number, "pin": "9999"}
    answer = kiosk.post("sessions", body)
    assert answer.status_code == 401
    assert error_of(answer) == "invalid_credentials"
    assert not KioskSession.objects.exists()


def test_an_inmate_of_another_facility_cannot_sign_in_here(kiosk):
    elsewhere = InmateFactory(facility=FacilityFactory())
    answer = kiosk.post("sessions", {"inmate_number": elsewhere.inmate_number, "pin": "1234"})
    assert answer.status_code == 401
    assert error_of(answer) == "invalid_credentials"


def test_five_wrong_pins_lock_the_inmate_out_of_every_kiosk_even_with_the_right_pin(
    facility, inmate
):
    kiosks = [Kiosk(facility, name=f"K{n}") for n in range(3)]
    for attempt in range(5):
        answer = kiosks[attempt % 3].post(
            "sessions", {"inmate_number": inmate.inmate_number, "pin": "0000"}
        )
        assert error_of(answer) == "invalid_credentials", attempt
    for kiosk in kiosks:
        answer = kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "1234"})
        assert answer.status_code == 423
        assert error_of(answer) == "locked_out"
        assert 14 * 60 < int(answer["Retry-After"]) <= 15 * 60
    assert not KioskSession.objects.exists()
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=15, seconds=1)):
        answer = kiosks[0].post("sessions", {"inmate_number": inmate.inmate_number, "pin": "1234"})
    assert answer.status_code == 201


def test_a_right_pin_before_the_fifth_wrong_one_starts_the_count_again(kiosk, inmate):
    for _ in range(4):
        kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "0000"})
    kiosk.sign_in(inmate)
    counter = PinFailureCounter.objects.get(inmate=inmate)
    assert (counter.failures, counter.locked_until) == (0, None)
    for _ in range(4):
        answer = kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "0000"})
        assert error_of(answer) == "invalid_credentials"


def test_a_right_pin_as_the_fifth_attempt_signs_in_and_ends_the_lock_out_it_started(kiosk, inmate):
    """Attempts are counted before the PIN is checked and the fifth starts the lock-out; a
    right PIN there is still a sign-in, which clears the count and the lock-out."""
    for _ in range(4):
        kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "0000"})
    kiosk.sign_in(inmate)
    counter = PinFailureCounter.objects.get(inmate=inmate)
    assert (counter.failures, counter.locked_until) == (0, None)
    assert KioskSession.objects.filter(inmate=inmate, ended_at=None).count() == 1
    for attempt in range(5):
        answer = kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "0000"})
        assert error_of(answer) == "invalid_credentials", attempt
    refused = kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "1234"})
    assert refused.status_code == 423
    assert PinFailureCounter.objects.get(inmate=inmate).failures == 6


def test_wrong_pins_older_than_the_lock_out_window_no_longer_count(kiosk, inmate):
    wrong = {"inmate_number": inmate.inmate_number, "pin": "0000"}
    for _ in range(4):
        kiosk.post("sessions", wrong)
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=16)):
        for _ in range(4):
            assert error_of(kiosk.post("sessions", wrong)) == "invalid_credentials"
        assert kiosk.post("sessions", {**wrong, "pin": "1234"}).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"pin": "1234"},
        {"inmate_number": "N1", "card": "c", "pin": "1234"},
        {"inmate_number": "N1"},
        {"inmate_number": "N1", "pin": 1234},
        {"inmate_number": "N1", "pin": "1234", "inmate_id": 1},
        ["inmate_number", "pin"],
    ],
)
def test_a_malformed_sign_in_gets_400_validation_error(kiosk, body):
    answer = kiosk.post("sessions", body)
    assert answer.status_code == 400
    assert error_of(answer) == "validation_error"


def test_sign_out_ends_the_session(signed_in):
    answer = signed_in.delete("sessions/current")
    assert answer.status_code == 204
    assert KioskSession.objects.get().ended_at is not None
    answer = signed_in.get("me/balance")
    assert answer.status_code == 401
    assert error_of(answer) == "session_expired"
    assert answer["WWW-Authenticate"] == 'InmateSession realm="kiosk"'


def test_a_session_expires_after_ten_idle_minutes_and_each_request_restarts_the_clock(
    signed_in,
):
    start = timezone.now()
    with time_machine.travel(start + dt.timedelta(minutes=9)):
        assert signed_in.get("me/balance").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=18)):
        assert signed_in.get("me/balance").status_code == 200
    with time_machine.travel(start + dt.timedelta(minutes=28, seconds=30)):
        answer = signed_in.get("me/balance")
    assert answer.status_code == 401
    assert error_of(answer) == "session_expired"


def test_a_session_is_refused_at_another_kiosk(signed_in, facility):
    other = Kiosk(facility, name="Other")
    other.session = signed_in.session
    answer = other.get("me/balance")
    assert answer.status_code == 401
    assert error_of(answer) == "session_expired"


@pytest.mark.parametrize("token", [None, "", "made-up"])
def test_inmate_requests_without_a_live_session_get_401_session_expired(kiosk, inmate, token):
    kiosk.session = token
    answer = kiosk.get("me/balance")
    assert answer.status_code == 401
    assert error_of(answer) == "session_expired"


def test_a_released_inmates_session_ends(signed_in, inmate):
    facility_services.release_inmate(
        inmate_id=inmate.pk, staff_id=None, idempotency_key="release-1", idempotency_scope="system"
    )
    answer = signed_in.get("me/balance")
    assert error_of(answer) == "session_expired"


# --- balance, catalog, statement --------------------------------------------------------


def test_balance_shows_money_caps_and_the_grades_weekly_spending_room(signed_in, inmate, facility):
    inmate.grade = grade_at(facility, limit_fen=20_000, period="week")
    inmate.save(update_fields=["grade"])
    funded(inmate, 30_000)
    product = product_at(facility, price_fen=2_500)
    assert signed_in.order([{"product_id": product.pk, "quantity": 2}], "b1").status_code == 201
    answer = signed_in.get("me/balance")
    assert answer.status_code == 200
    assert answer.json() == {
        "available": 25_000,
        "held": 0,
        "currency": "CNY",
        "balance_cap": 500_000,
        "month": {"received": 30_000, "reserved": 0, "cap": 100_000, "remaining": 70_000},
        "spending": {"period": "week", "spent": 5_000, "limit": 20_000, "remaining": 15_000},
    }


def test_without_a_grade_the_spending_limit_is_null(signed_in):
    spending = signed_in.get("me/balance").json()["spending"]
    assert spending == {"period": "month", "spent": 0, "limit": None, "remaining": None}


def test_catalog_lists_this_facilitys_products_for_this_inmate_20_a_page(
    signed_in, inmate, facility
):
    products = [product_at(facility, price_fen=100 + n) for n in range(23)]
    product_at(FacilityFactory())  # another facility's
    product_at(facility, is_active=False)
    Restriction.objects.create(
        inmate=inmate, kind="product", product=products[0], reason="disciplinary"
    )
    first = signed_in.get("catalog")
    assert first.status_code == 200
    body = first.json()
    assert body["count"] == 22
    assert len(body["results"]) == 20
    assert body["previous"] is None and body["next"].endswith("page=2")
    assert body["results"][0] == {
        "id": products[1].pk,
        "sku": products[1].sku,
        "name": products[1].name_en,
        "category": "Food",
        "price": 101,
        "currency": "CNY",
        "max_per_order": 10,
        "in_stock": 100,
        "next_price": None,  # no price rise announced
    }
    second = signed_in.get("catalog", page=2).json()
    assert [p["id"] for p in second["results"]] == [p.pk for p in products[21:]]
    assert error_of(signed_in.get("catalog", page=9)) == "not_found"


def test_catalog_names_follow_the_requests_language(signed_in, facility):
    product = product_at(facility)
    answer = signed_in.get("catalog", headers={"Accept-Language": "zh-hans"})
    assert answer.json()["results"][0]["name"] == product.name_zh
    assert answer.json()["results"][0]["category"] == "食品"


def test_a_suspended_inmate_sees_an_empty_catalog(signed_in, inmate, facility):
    product_at(facility)
    Restriction.objects.create(
        inmate=inmate,
        kind="suspension",
        ends_at=timezone.now() + dt.timedelta(days=3),
        reason="fight",
    )
    assert signed_in.get("catalog").json()["count"] == 0


def test_statement_lists_the_inmates_lines_newest_first(signed_in, inmate, facility):
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=300)
    order = signed_in.order([{"product_id": product.pk, "quantity": 1}], "s1").json()
    answer = signed_in.get("me/transactions", headers={"Accept-Language": "en"})
    assert answer.status_code == 200
    lines = answer.json()["results"]
    assert [(line["kind"], line["amount"], line["account"]) for line in lines] == [
        ("purchase", -300, "spendable"),
        ("deposit", 10_000, "spendable"),
    ]
    assert lines[0]["description"] == f"Commissary order #{order['id']}"
    # Added: the journal's memo as written; every earlier field is still there.
    assert lines[0]["memo"] == f"Commissary order #{order['id']}"
    assert set(lines[0]) == {
        "id",
        "created_at",
        "kind",
        "description",
        "memo",
        "amount",
        "account",
        "currency",
    }
    assert dt.datetime.fromisoformat(lines[0]["created_at"]).utcoffset() is not None


def test_a_statement_line_is_described_in_the_kiosk_s_language(signed_in, inmate, facility):
    """The memo the journal keeps in English reads in Chinese for a Chinese kiosk; the memo
    field keeps it as written."""
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=300)
    order = signed_in.order([{"product_id": product.pk, "quantity": 1}], "s2").json()
    lines = signed_in.get("me/transactions", headers={"Accept-Language": "zh-hans"}).json()
    purchase = lines["results"][0]
    assert purchase["description"] == f"狱内商店订单 #{order['id']}"
    assert purchase["memo"] == f"Commissary order #{order['id']}"


# --- orders -----------------------------------------------------------------------------


def test_an_order_takes_stock_and_money_at_server_prices(signed_in, inmate, facility):
    funded(inmate, 10_000)
    noodles = product_at(facility, price_fen=450, stock=10)
    soap = product_at(facility, price_fen=1_200, stock=5)
    answer = signed_in.order(
        [{"product_id": noodles.pk, "quantity": 2}, {"product_id": soap.pk, "quantity": 1}], "o1"
    )
    assert answer.status_code == 201
    body = answer.json()
    order = Order.objects.get()
    assert body == {
        "id": order.pk,
        "status": "placed",
        "items": [
            {
                "product_id": noodles.pk,
                "name": noodles.name_en,
                "quantity": 2,
                "unit_price": 450,
                "line_total": 900,
            },
            {
                "product_id": soap.pk,
                "name": soap.name_en,
                "quantity": 1,
                "unit_price": 1_200,
                "line_total": 1_200,
            },
        ],
        "total": 2_100,
        "currency": "CNY",
        "balance_after": 7_900,
        "created_at": body["created_at"],
    }
    assert dt.datetime.fromisoformat(body["created_at"]).utcoffset() == dt.timedelta(hours=8)
    assert (stock_of(noodles, facility), stock_of(soap, facility)) == (8, 4)
    purchase = Transaction.objects.get(kind="purchase")
    assert purchase.pk == order.purchase_id
    assert purchase.idempotency_scope == f"kiosk:{signed_in.device.pk}"
    assert signed_in.get("me/balance").json()["available"] == 7_900


def test_a_replay_returns_the_first_answer_and_moves_nothing_again(signed_in, inmate, facility):
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=1_000, stock=1)
    items = [{"product_id": product.pk, "quantity": 1}]
    first = signed_in.order(items, "same-key")
    again = signed_in.order(items, "same-key")  # the stock is gone by now
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert Order.objects.count() == 1
    assert Transaction.objects.filter(kind="purchase").count() == 1
    assert signed_in.get("me/balance").json()["available"] == 9_000


def test_the_same_key_with_another_body_gets_409_and_changes_nothing(
    signed_in, inmate, facility, ledger_snapshot
):
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=1_000)
    signed_in.order([{"product_id": product.pk, "quantity": 1}], "k")
    before = ledger_snapshot()
    answer = signed_in.order([{"product_id": product.pk, "quantity": 2}], "k")
    assert answer.status_code == 409
    assert error_of(answer) == "idempotency_conflict"
    assert ledger_snapshot() == before
    assert stock_of(product, facility) == 99


def test_keys_are_scoped_to_the_kiosk(facility, inmate):
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=1_000)
    one, two = Kiosk(facility, "One"), Kiosk(facility, "Two")
    one.sign_in(inmate)
    two.sign_in(inmate)
    assert one.order([{"product_id": product.pk, "quantity": 1}], "shared").status_code == 201
    assert two.order([{"product_id": product.pk, "quantity": 2}], "shared").status_code == 201
    assert Order.objects.count() == 2


def test_an_order_without_an_idempotency_key_gets_400(signed_in, facility, ledger_snapshot):
    product = product_at(facility)
    before = ledger_snapshot()
    answer = signed_in.post("orders", {"items": [{"product_id": product.pk, "quantity": 1}]})
    assert answer.status_code == 400
    assert error_of(answer) == "validation_error"
    assert ledger_snapshot() == before


@pytest.mark.parametrize("key", ["", " ", " lead", "x" * 129, "naïve", "tab\there"])
def test_an_idempotency_key_must_be_1_to_128_printable_ascii(signed_in, facility, key):
    product = product_at(facility)
    answer = signed_in.order([{"product_id": product.pk, "quantity": 1}], key)
    assert answer.status_code == 400
    assert error_of(answer) == "validation_error"
    assert not Order.objects.exists()


def test_insufficient_funds_gets_422_and_changes_nothing(
    signed_in, inmate, facility, ledger_snapshot
):
    funded(inmate, 999)
    product = product_at(facility, price_fen=1_000)
    before = ledger_snapshot()
    answer = signed_in.order([{"product_id": product.pk, "quantity": 1}], "poor")
    assert answer.status_code == 422
    assert error_of(answer) == "insufficient_funds"
    assert ledger_snapshot() == before
    assert (stock_of(product, facility), Order.objects.count()) == (100, 0)


def test_the_spending_limit_gets_422_spending_limit_exceeded(
    signed_in, inmate, facility, ledger_snapshot
):
    inmate.grade = grade_at(facility, limit_fen=40_000)
    inmate.save(update_fields=["grade"])
    funded(inmate, 90_000)
    product = product_at(facility, price_fen=10_000)
    assert signed_in.order([{"product_id": product.pk, "quantity": 4}], "a").status_code == 201
    before = ledger_snapshot()
    answer = signed_in.order([{"product_id": product.pk, "quantity": 1}], "b")
    assert answer.status_code == 422
    assert error_of(answer) == "spending_limit_exceeded"
    assert ledger_snapshot() == before
    assert stock_of(product, facility) == 96


def test_out_of_stock_gets_422_and_changes_nothing(signed_in, inmate, facility, ledger_snapshot):
    funded(inmate, 10_000)
    scarce = product_at(facility, stock=1)
    plenty = product_at(facility, stock=50)
    before = ledger_snapshot()
    answer = signed_in.order(
        [{"product_id": plenty.pk, "quantity": 3}, {"product_id": scarce.pk, "quantity": 2}], "x"
    )
    assert answer.status_code == 422
    assert error_of(answer) == "out_of_stock"
    assert ledger_snapshot() == before
    assert (stock_of(scarce, facility), stock_of(plenty, facility)) == (1, 50)


@pytest.mark.parametrize("kind", ["product", "category", "suspension"])
def test_a_restriction_gets_422_product_restricted(
    signed_in, inmate, facility, ledger_snapshot, kind
):
    funded(inmate, 10_000)
    product = product_at(facility)
    target = {
        "product": {"product": product},
        "category": {"category": product.category},
        "suspension": {"ends_at": timezone.now() + dt.timedelta(days=1)},
    }[kind]
    Restriction.objects.create(inmate=inmate, kind=kind, reason="rule", **target)
    before = ledger_snapshot()
    answer = signed_in.order([{"product_id": product.pk, "quantity": 1}], "r")
    assert answer.status_code == 422
    assert error_of(answer) == "product_restricted"
    assert ledger_snapshot() == before
    assert stock_of(product, facility) == 100


def test_an_ended_restriction_no_longer_applies(signed_in, inmate, facility):
    funded(inmate, 10_000)
    product = product_at(facility)
    Restriction.objects.create(
        inmate=inmate,
        kind="suspension",
        ends_at=timezone.now() - dt.timedelta(minutes=1),
        reason="over",
    )
    assert signed_in.order([{"product_id": product.pk, "quantity": 1}], "ok").status_code == 201


def test_a_frozen_account_gets_422_account_frozen(signed_in, inmate, facility, ledger_snapshot):
    funded(inmate, 10_000)
    product = product_at(facility)
    set_frozen(inmate, True)
    before = ledger_snapshot()
    answer = signed_in.order([{"product_id": product.pk, "quantity": 1}], "f")
    assert answer.status_code == 422
    assert error_of(answer) == "account_frozen"
    assert ledger_snapshot() == before


def test_orders_list_and_detail_show_the_inmates_own_orders(signed_in, inmate, facility):
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=100)
    placed = [
        signed_in.order([{"product_id": product.pk, "quantity": n}], f"l{n}").json() for n in (1, 2)
    ]
    listed = signed_in.get("orders")
    assert listed.status_code == 200
    assert listed.json()["count"] == 2
    assert listed.json()["results"] == list(reversed(placed))
    detail = signed_in.get(f"orders/{placed[0]['id']}")
    assert detail.status_code == 200
    # The detail adds, to the placed answer, each line's id and refunds and the disputes.
    body = detail.json()
    assert body.pop("disputes") == []
    line_ids = [item.pop("line_id") for item in body["items"]]
    assert [item.pop("refunded") for item in body["items"]] == [0] * len(line_ids)
    assert line_ids == list(
        OrderItem.objects.filter(order_id=placed[0]["id"]).values_list("id", flat=True)
    )
    assert body == placed[0]


def test_another_inmates_order_is_404(signed_in, facility):
    other = InmateFactory(facility=facility)
    funded(other, 10_000)
    product = product_at(facility)
    other_kiosk = Kiosk(facility, "Other")
    other_kiosk.sign_in(other)
    order_id = other_kiosk.order([{"product_id": product.pk, "quantity": 1}], "o").json()["id"]
    answer = signed_in.get(f"orders/{order_id}")
    assert answer.status_code == 404
    assert error_of(answer) == "not_found"


# --- DRF's own failures, in the same envelope ---------------------------------------------


def test_an_unknown_path_and_a_trailing_slash_are_404_in_the_envelope(signed_in):
    # An encoded newline in the path (found by schemathesis) lands on the catch-all too.
    for path in ("nothing-here", "orders/", "orders/abc", "catalog/", "orders/V%0AJ5"):
        answer = signed_in.get(path)
        assert answer.status_code == 404, path
        assert error_of(answer) == "not_found"


def test_a_wrong_method_is_405_in_the_envelope(signed_in):
    answer = signed_in.client.put(API + "orders", {}, format="json", **signed_in.headers())
    assert answer.status_code == 405
    assert error_of(answer) == "method_not_allowed"


def test_a_body_that_is_not_json_is_415_in_the_envelope(signed_in):
    answer = signed_in.client.post(
        API + "orders", "items", content_type="text/plain", **signed_in.headers()
    )
    assert answer.status_code == 415
    assert error_of(answer) == "unsupported_media_type"


def test_malformed_json_is_400_validation_error(signed_in):
    answer = signed_in.client.post(
        API + "orders",
        '{"items": [',
        content_type="application/json",
        **signed_in.headers({"Idempotency-Key": "p"}),
    )
    assert answer.status_code == 400
    assert error_of(answer) == "validation_error"


def test_sign_in_attempts_are_throttled_per_kiosk_with_retry_after(facility, inmate, monkeypatch):
    monkeypatch.setattr(SignInThrottle, "rate", "3/min", raising=False)
    kiosk, other = Kiosk(facility, "Busy"), Kiosk(facility, "Quiet")
    for _ in range(3):
        kiosk.post("sessions", {"inmate_number": "nobody", "pin": "1234"})
    answer = kiosk.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "1234"})
    assert answer.status_code == 429
    assert error_of(answer) == "throttled"
    assert 0 < int(answer["Retry-After"]) <= 60
    assert (
        other.post("sessions", {"inmate_number": inmate.inmate_number, "pin": "1234"}).status_code
        == 201
    )
