"""What a kiosk request costs, and what the API's shorter middleware keeps: the statements of
an order (a regression guard for the hot path), and the headers and envelope every answer
still has while sessions, CSRF, users, the audit actor, messages, allauth and axes are skipped
for the API (``kiosk.middleware``)."""

from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import Order
from ledger.models import Transaction
from tests.catalog.helpers import funded, product_at, stock_of

from .conftest import API, error_of

SECURITY_HEADERS = (
    "Content-Security-Policy",
    "Permissions-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
)


def _assert_security_headers(answer):
    for header in SECURITY_HEADERS:
        assert answer.has_header(header), header
    assert "default-src 'self'" in answer["Content-Security-Policy"]
    assert answer["X-Frame-Options"] == "DENY"


def test_an_order_is_five_statements_with_one_account_lock_and_no_model_reads(
    signed_in, inmate, facility, django_db_blocker
):
    """The hot path: the device and session in one read, then one transaction: the account
    lock, the stock rows (with the refusal check, kiosk, grade, restrictions and the order's
    id), the debit (balances, transaction and entries in one statement) under the same lock,
    then the stock, the whole order and its lines in one statement: five statements, seven
    with the transaction's BEGIN and COMMIT (there were eighteen, then twelve)."""
    from django.db import connection

    funded(inmate, 10_000)
    product = product_at(facility, price_fen=450, stock=10)
    with CaptureQueriesContext(connection) as queries:
        answer = signed_in.order([{"product_id": product.pk, "quantity": 2}], "cost-1")
    assert answer.status_code == 201, answer.content
    statements = [query["sql"] for query in queries.captured_queries]
    # The test runs in a transaction, so the order's BEGIN and COMMIT are a savepoint's.
    work = [sql for sql in statements if "SAVEPOINT" not in sql.upper()]
    listing = "\n".join(sql[:100] for sql in work)
    assert len(work) == 5, listing
    assert sum(sql.startswith("UPDATE catalog_order") for sql in work) == 0, listing
    assert sum("ledger_account" in sql and "FOR NO KEY UPDATE" in sql for sql in work) == 1, listing
    assert not any('"' in sql.split("FROM")[0] for sql in work if sql.startswith("SELECT")), (
        "an ORM read on the hot path:\n" + listing
    )
    order = Order.objects.get()
    assert Transaction.objects.get(kind="purchase").pk == order.purchase_id
    assert order.placed_response == answer.json()
    assert stock_of(product, facility) == 8
    assert signed_in.get("me/balance").json()["available"] == 10_000 - 900


def test_api_answers_keep_the_security_headers_and_set_no_cookie(signed_in, inmate, facility):
    funded(inmate, 10_000)
    product = product_at(facility, price_fen=450, stock=10)
    answer = signed_in.order(
        [{"product_id": product.pk, "quantity": 1}], "headers-1", {"Accept-Language": "en"}
    )
    assert answer.status_code == 201
    _assert_security_headers(answer)
    assert answer["Content-Language"] == "en"
    assert answer.json()["items"][0]["name"] == product.name_en
    assert "Cookie" not in answer.get("Vary", "")
    assert not answer.cookies


def test_api_errors_keep_the_envelope_and_the_security_headers(kiosk, signed_in):
    refused = kiosk.client.get(API + "me/balance", HTTP_AUTHORIZATION="Kiosk wrong")
    assert refused.status_code == 401
    assert error_of(refused) == "not_authenticated"
    _assert_security_headers(refused)
    # CSRF belongs to cookie sessions: a POST without a token to an unknown API path is the
    # API's 404, not a CSRF page.
    strict = Client(enforce_csrf_checks=True)
    missing = strict.post(API + "nothing-here", {}, HTTP_AUTHORIZATION=f"Kiosk {kiosk.key}")
    assert missing.status_code == 404
    assert error_of(missing) == "not_found"
    _assert_security_headers(missing)
    wrong_method = signed_in.client.put(API + "orders", {}, format="json", **signed_in.headers())
    assert wrong_method.status_code == 405
    assert error_of(wrong_method) == "method_not_allowed"
    _assert_security_headers(wrong_method)


def test_pages_outside_the_api_keep_csrf_and_sessions(db):
    strict = Client(enforce_csrf_checks=True)
    page = strict.get("/accounts/login/")
    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    _assert_security_headers(page)
    refused = strict.post("/accounts/login/", {"login": "a@example.com", "password": "x"})
    assert refused.status_code == 403  # no CSRF token: the full stack still runs here


def test_browser_middleware_is_passed_by_for_the_api_only(signed_in, db, monkeypatch):
    """Sessions, the user, the audit actor and messages do nothing for a kiosk request,
    through public middleware only: each is a subclass of Django's (so the admin's checks still
    find it) whose call and hooks step aside for /api/kiosk/."""
    from django.conf import settings
    from django.contrib.admin.checks import check_dependencies
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware

    from kiosk import middleware

    assert issubclass(middleware.SessionMiddleware, SessionMiddleware)
    assert issubclass(middleware.MessageMiddleware, MessageMiddleware)
    assert check_dependencies() == []  # admin.E408-E410 find sessions, users and messages
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE  # check --deploy
    seen = []
    session_request = SessionMiddleware.process_request

    def session_spy(self, request):
        seen.append(request.path)
        return session_request(self, request)

    monkeypatch.setattr(SessionMiddleware, "process_request", session_spy)
    assert signed_in.get("me/balance").status_code == 200
    assert seen == []
    Client().get("/accounts/login/")
    assert seen == ["/accounts/login/"]


def test_a_kiosk_request_is_its_own_health_check_and_survives_a_dropped_connection(
    signed_in, transactional_db, monkeypatch
):
    """Django's ``SELECT 1`` before a request's first statement is not sent: the device read is
    the check (``commissary.db.first_read``). A connection the server ended since the last
    request is replaced, and the request answers as usual."""
    from django.db import connection

    from tests.commissary.test_db import ended_by_the_server

    checks = []
    is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or is_usable())
    connection.health_check_done = False  # a new request, as Django's request_started does
    assert signed_in.get("me/balance").status_code == 200
    assert checks == []
    ended_by_the_server()
    connection.health_check_done = False
    assert signed_in.get("me/balance").status_code == 200
    assert checks == [1]  # asked only once the read had failed


def test_the_authenticated_device_is_its_row_as_the_orm_reads_it(kiosk, django_assert_num_queries):
    """The device read builds the kiosk and its facility as the ORM builds a row it read
    (``from_db``, each value in its field's place), the columns it did not read deferred: a
    field it did not read comes from the database, never a made-up default."""
    from django.utils import timezone

    from facilities.models import KioskDevice, hash_device_key
    from kiosk.authentication import _active_device

    device, session = _active_device(hash_device_key(kiosk.key), token=None, now=timezone.now())
    assert session is None
    stored = KioskDevice.objects.select_related("facility").get(pk=kiosk.device.pk)
    with django_assert_num_queries(0):
        for field in ("id", "facility_id", "name", "key_prefix", "key_hash", "is_active"):
            assert getattr(device, field) == getattr(stored, field), field
        for field in ("id", "code", "name", "timezone", "currency"):
            assert getattr(device.facility, field) == getattr(stored.facility, field), field
    assert not device._state.adding
    assert device.get_deferred_fields() == {"created_at", "revoked_at"}
    with django_assert_num_queries(1):
        assert device.facility.monthly_cap_fen == stored.facility.monthly_cap_fen
    with django_assert_num_queries(1):
        assert device.created_at == stored.created_at
