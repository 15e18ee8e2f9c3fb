"""PgBouncer in front of PostgreSQL: why session mode, and that the kiosk and the ledger work
through it (docs/operations.md, "A connection pooler").

Each test starts a throwaway PgBouncer of its own (``bench/pgbouncer.py``) in front of the
test database's server. Without PgBouncer installed they skip on a workstation and fail under
CI (``CI=true``). The whole kiosk and ledger suites run through the pooler with
``COMMISSARY_TEST_THROUGH_PGBOUNCER=1 pytest tests/kiosk tests/ledger`` (tests/conftest.py).
"""

import os
import socket
import subprocess
import sys

import psycopg
import pytest
from django.db import connection

from catalog.models import FacilityProduct, Order
from commissary.db import PreparedCursor, prepared_cursor
from facilities import services as facility_services
from ledger import services as ledger_services
from ledger.models import Account, Deposit
from ledger.reconciliation import run_checks
from tests.catalog.helpers import funded, order_from_kiosk, product_at
from tests.concurrency.conftest import _run_together
from tests.conftest import THROUGH_PGBOUNCER, routed_through, start_pgbouncer
from tests.factories import FacilityFactory, InmateFactory
from tests.kiosk.conftest import Kiosk

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = "SELECT %s::bigint + 1 AS pooled_probe"


def client_of(pooler, **options) -> psycopg.Connection:
    """A bare psycopg connection to the test database through ``pooler``."""
    database = connection.settings_dict
    return psycopg.connect(
        host="127.0.0.1",
        port=pooler.port,
        dbname=database["NAME"],
        user=database["USER"] or "postgres",
        password=database["PASSWORD"] or None,
        autocommit=True,
        **options,
    )


def prepare_probe(client: psycopg.Connection) -> int:
    """Run a statement the way the kiosk's prepared cursor does (``commissary.db``): psycopg
    names it ``_pg3_0`` on this connection and asks the server to keep it."""
    cursor = PreparedCursor(client)
    cursor.execute(PROBE, [41])
    return cursor.fetchone()[0]


@pytest.fixture
def pooler_of():
    """``pooler_of(pool_mode=…, …)`` starts a PgBouncer; all are stopped after the test."""
    started = []

    def start(**options):
        pooler = start_pgbouncer(**options)
        started.append(pooler)
        return pooler

    yield start
    for pooler in started:
        pooler.stop()


@pytest.fixture
def through_pgbouncer(transactional_db, pooler_of):
    """Every connection of the test, its threads' included, through a session-mode PgBouncer
    configured as docs/operations.md says."""
    if THROUGH_PGBOUNCER:  # the whole run is already routed through one
        yield None
        return
    with routed_through(pooler_of(pool_mode="session")) as pooler:
        yield pooler


# --- why session mode ----------------------------------------------------------------------


@pytest.mark.django_db  # bare connections of their own: nothing to flush
def test_transaction_mode_breaks_the_kiosks_prepared_statements(pooler_of):
    """In transaction mode two clients take turns on one server connection: the second
    client's first prepared statement has the name the first client's already holds there.
    (Which error a client gets depends on the turns: "already exists" here, "does not exist"
    where a client lands on a server connection its statement was never prepared on.)"""
    pooler = pooler_of(pool_mode="transaction", pool_size=1)
    with client_of(pooler) as first, client_of(pooler) as second:
        assert prepare_probe(first) == 42
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
            prepare_probe(second)


@pytest.mark.django_db  # bare connections of their own: nothing to flush
def test_session_mode_keeps_each_clients_prepared_statements(pooler_of):
    pooler = pooler_of(pool_mode="session", pool_size=2)
    with client_of(pooler) as first, client_of(pooler) as second:
        assert prepare_probe(first) == 42
        assert prepare_probe(second) == 42
        assert prepare_probe(first) == 42  # prepared once, run again


@pytest.mark.django_db  # bare connections of their own: nothing to flush
def test_session_mode_needs_its_reset_query_between_clients(pooler_of):
    """A client that leaves hands its server connection to the next one. Without
    ``server_reset_query = DISCARD ALL`` the next client finds the last one's prepared
    statements there; with it (PgBouncer's default), the connection comes back clean."""
    without_reset = pooler_of(pool_mode="session", pool_size=1, server_reset_query="")
    with client_of(without_reset) as leaving:
        prepare_probe(leaving)
    with (
        client_of(without_reset) as arriving,
        pytest.raises(psycopg.errors.DuplicatePreparedStatement),
    ):
        prepare_probe(arriving)

    with_reset = pooler_of(pool_mode="session", pool_size=1)
    with client_of(with_reset) as leaving:
        prepare_probe(leaving)
    with client_of(with_reset) as arriving:
        assert prepare_probe(arriving) == 42


def test_pgbouncer_refuses_the_startup_options_so_behind_it_the_settings_are_set_on_connect(
    pooler_of,
):
    """Settings send ``plan_cache_mode`` as a startup option; PgBouncer refuses any startup
    option. With DATABASE_BEHIND_POOLER the application sets it on each new connection."""
    pooler = pooler_of(pool_mode="session", pool_size=1)
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        client_of(pooler, options="-c plan_cache_mode=force_generic_plan").close()

    with routed_through(pooler):
        # The one server connection was reset (DISCARD ALL) after the last client: the
        # setting is there because this connection set it.
        for _ in range(2):
            with connection.cursor() as cursor:
                cursor.execute("SHOW plan_cache_mode")
                assert cursor.fetchone() == ("force_generic_plan",)
            connection.close()


@pytest.mark.parametrize("behind_pooler", ["true", "false"])
def test_the_settings_send_startup_options_only_without_a_pooler(behind_pooler):
    """What a deployment's settings make of DATABASE_BEHIND_POOLER (read at start-up, so in a
    process of its own)."""
    program = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS'].get('options', ''))"
    )
    answer = subprocess.run(  # noqa: S603 - our own interpreter and settings
        [sys.executable, "-c", f"import django; django.setup(); {program}"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "commissary.settings",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:6432/commissary",
            "DATABASE_BEHIND_POOLER": behind_pooler,
        },
        capture_output=True,
        text=True,
        check=True,
    )
    expected = "" if behind_pooler == "true" else "-c plan_cache_mode=force_generic_plan"
    assert answer.stdout.strip() == expected


# --- the kiosk and the ledger through the pooler --------------------------------------------


def our_side_and_the_servers_side() -> tuple[int, int]:
    """This connection's local port, and the client port the server sees: the same when
    connected directly, different through a pooler (the server's client is the pooler)."""
    connection.ensure_connection()
    client = connection.connection
    with socket.fromfd(client.pgconn.socket, socket.AF_INET, socket.SOCK_STREAM) as ours:
        local_port = ours.getsockname()[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_port FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        return local_port, cursor.fetchone()[0]


def test_the_connection_goes_through_the_pooler(through_pgbouncer):
    local_port, server_sees = our_side_and_the_servers_side()
    assert local_port != server_sees
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)
    with prepared_cursor() as cursor:
        cursor.execute(PROBE, [1])
        assert cursor.fetchone() == (2,)


@pytest.mark.skipif(THROUGH_PGBOUNCER, reason="the whole run goes through a pooler")
def test_without_the_pooler_the_connection_is_direct(transactional_db):
    local_port, server_sees = our_side_and_the_servers_side()
    assert local_port == server_sees


def test_kiosk_orders_over_the_api_through_the_pooler(through_pgbouncer):
    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility), 5_000)
    product = product_at(facility, price_fen=1_000, stock=10)
    kiosk = Kiosk(facility)
    kiosk.sign_in(inmate)
    items = [{"product_id": product.pk, "quantity": 2}]

    first = kiosk.order(items, "pooled-1")
    replay = kiosk.order(items, "pooled-1")
    second = kiosk.order(items, "pooled-2")

    assert (first.status_code, replay.status_code, second.status_code) == (201, 201, 201)
    assert replay.json()["id"] == first.json()["id"] != second.json()["id"]
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 1_000
    assert FacilityProduct.objects.get(product=product).stock == 6
    assert run_checks() == []


def test_a_deposit_reserved_and_credited_through_the_pooler(through_pgbouncer):
    inmate = InmateFactory()
    deposit = ledger_services.reserve_deposit(
        inmate_id=inmate.pk,
        amount_fen=3_000,
        idempotency_key="pooled-deposit",
        idempotency_scope="depositor:1",
    )
    ledger_services.credit_deposit(deposit_id=deposit.pk, provider_reference="P-1")
    ledger_services.credit_deposit(deposit_id=deposit.pk, provider_reference="P-1")  # replay

    assert Deposit.objects.get(pk=deposit.pk).status == "credited"
    assert Account.objects.get(inmate=inmate, kind="spendable").balance_fen == 3_000
    assert run_checks() == []


def test_racing_orders_through_the_pooler_stop_at_the_money(through_pgbouncer):
    """Twenty threads, each its own connection through the pooler and so its own server
    connection, order at once: the row lock still lets exactly the five that money covers."""
    facility = FacilityFactory()
    inmate = funded(InmateFactory(facility=facility), 5_000)
    device, _key = facility_services.register_kiosk_device(facility=facility, name="K")
    product = product_at(facility, price_fen=1_000, stock=100)

    outcomes = _run_together(
        [lambda n=n: order_from_kiosk(inmate, device, product, f"p{n}") for n in range(20)]
    )

    assert sum(outcome.succeeded for outcome in outcomes) == 5
    assert sorted(type(o.error).__name__ for o in outcomes if not o.succeeded) == (
        ["InsufficientFunds"] * 15
    )
    assert Order.objects.filter(inmate=inmate).count() == 5
    assert FacilityProduct.objects.get(product=product).stock == 95
    assert run_checks() == []


def test_racing_deposits_through_the_pooler_reserve_one_key_once(through_pgbouncer):
    inmate = InmateFactory()
    outcomes = _run_together(
        [
            lambda: ledger_services.reserve_deposit(
                inmate_id=inmate.pk,
                amount_fen=2_000,
                idempotency_key="pooled-same-key",
                idempotency_scope="depositor:1",
            )
            for _ in range(10)
        ]
    )
    assert all(outcome.succeeded for outcome in outcomes), outcomes
    assert len({outcome.value.pk for outcome in outcomes}) == 1
    assert Deposit.objects.filter(inmate=inmate).count() == 1
    assert run_checks() == []
