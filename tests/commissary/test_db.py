"""commissary.db: the kiosk's prepared statements, built from Django's public connection
methods, and the ANALYZE at each doubling of a table that makes every connection plan its
statements again. An upgrade of Django or psycopg that stops the statements being prepared,
logged or wrapped fails here, loudly, rather than slowing the kiosk down in silence."""

import psycopg
import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from bench.common import raw_connection_params
from commissary import db


def prepared_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db
def test_prepared_cursor_prepares_its_statements_on_the_server():
    sql = "SELECT %s::bigint + 40 AS prepared_probe"
    with db.prepared_cursor() as cursor:
        cursor.execute(sql, [2])
        assert cursor.fetchone() == (42,)
    assert any("prepared_probe" in statement for statement in prepared_names())
    # Django's own cursor prepares nothing.
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::bigint AS unprepared_probe", [1])
    assert not any("unprepared_probe" in statement for statement in prepared_names())


@pytest.mark.django_db
def test_prepared_statements_reach_the_query_log_with_their_values():
    with CaptureQueriesContext(connection) as captured, db.prepared_cursor() as cursor:
        cursor.execute("SELECT %s::bigint, %s::text AS logged_probe", [7, "it's"])
    assert captured[-1]["sql"] == "SELECT 7::bigint, 'it''s'::text AS logged_probe"


@pytest.mark.django_db
def test_prepared_statements_pass_through_execute_wrappers_and_djangos_errors():
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper), db.prepared_cursor() as cursor:
        cursor.execute("SELECT %s::bigint AS wrapped_probe", [1])
    assert seen == ["SELECT %s::bigint AS wrapped_probe"]
    with pytest.raises(IntegrityError), transaction.atomic(), db.prepared_cursor() as cursor:
        cursor.execute("SELECT CAST(NULL AS bigint) FROM (SELECT 1) x WHERE %s::bigint = 1", [1])
        cursor.execute("CREATE TEMP TABLE probe_unique (id bigint PRIMARY KEY)")
        cursor.execute("INSERT INTO probe_unique VALUES (%s::bigint), (%s::bigint)", [1, 1])


@pytest.fixture
def probe_table(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE replan_probe (id bigserial PRIMARY KEY, group_id bigint NOT NULL)"
        )
        cursor.execute("CREATE INDEX replan_probe_group ON replan_probe (group_id)")
    yield "replan_probe"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE replan_probe")


def reltuples(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [table])
        return cursor.fetchone()[0]


def test_a_table_is_analysed_when_its_newest_id_reaches_a_power_of_two(probe_table):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO replan_probe (group_id) SELECT g FROM generate_series(1, 100) g"
        )
    assert reltuples(probe_table) == -1  # never analysed
    with transaction.atomic():
        db.replan_when_doubled(63, (probe_table,))
        db.replan_when_doubled(96, (probe_table,))
    assert reltuples(probe_table) == -1  # neither is a power of two
    with transaction.atomic():
        db.replan_when_doubled(128, (probe_table,))
        assert reltuples(probe_table) == -1  # not before the commit
    assert reltuples(probe_table) == 100


def test_a_plan_made_on_an_empty_table_is_made_again_after_a_doubling(probe_table):
    """The cold-database slowdown in a test tube: a generic plan made on the empty table stays
    a sequential scan however much the table grows, until another connection (the writer
    that reached a doubling) analyses the table."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)
        # Analysed while small, as a benchmark's set-up or autovacuum's first pass leaves it
        # (never analysed, PostgreSQL assumes ten pages and plans the index).
        cursor.execute("ANALYZE replan_probe")
        cursor.execute(
            "PREPARE replan_probe_plan(bigint) AS "
            "SELECT count(*) FROM replan_probe WHERE group_id = $1"
        )

    def plan() -> str:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN EXECUTE replan_probe_plan(3)")
            return " ".join(row[0] for row in cursor.fetchall())

    try:
        assert "Seq Scan" in plan()
        with psycopg.connect(**raw_connection_params(), autocommit=True) as writer:
            writer.execute(
                "INSERT INTO replan_probe (group_id) SELECT g FROM generate_series(1, 20000) g"
            )
            assert "Seq Scan" in plan()  # the table grew; the plan did not follow
            writer.execute("ANALYZE replan_probe")
        assert "Index" in plan()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DEALLOCATE replan_probe_plan")


def ended_by_the_server() -> None:
    """The server ends this thread's database session, as a restart would."""
    pid = connection.connection.info.backend_pid
    with psycopg.connect(**raw_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(200):  # until it is gone
            if not other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                break


def read_backend(cursor):
    cursor.execute("SELECT pg_backend_pid() + %s::int", [0])
    return cursor.fetchone()[0]


def test_first_read_replaces_a_connection_the_server_ended(transactional_db):
    connection.ensure_connection()
    ended = connection.connection.info.backend_pid
    ended_by_the_server()
    connection.health_check_done = False  # a new request, as Django's request_started does
    assert db.first_read(read_backend) != ended
    assert connection.health_check_done


def test_first_read_is_the_health_check_on_a_live_connection(transactional_db, monkeypatch):
    connection.ensure_connection()
    live = connection.connection.info.backend_pid
    checks = []
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)
    connection.health_check_done = False
    assert db.first_read(read_backend) == live
    assert checks == [] and connection.health_check_done  # no SELECT 1 of its own


def test_first_read_raises_its_own_error_on_a_live_connection(transactional_db):
    connection.ensure_connection()
    connection.health_check_done = False

    def failing(cursor):
        cursor.execute("SELECT 1 / %s::int", [0])

    with pytest.raises(DataError):
        db.first_read(failing)
