"""A cursor for the few statements every kiosk order sends, and the upkeep that keeps their
plans (and every other cached plan) fit for tables that grow.

Prepared statements. On PostgreSQL the kiosk order's statements are prepared once per
connection and their plan kept (server-side binding, prepared on first use), not planned
again on every request. Django binds parameters on the client and prepares nothing, and
leaves it so by default because prepared statements do not survive a connection pooler in
transaction mode (PgBouncer before 1.21). Planning the order's statements (the device and
session read, the account lock, the stock read and the writes) took more PostgreSQL time than
running them: 1.1 ms of an order's 3 ms there, and 0.000 ms once prepared
(docs/benchmarks.md, "Kiosk orders over HTTP", Planning). So these statements, and only
these, are prepared; a pooler in front of the database must run in session mode
(docs/operations.md). Everywhere else ``connection.cursor()`` stays as Django makes it. On
SQLite this is that cursor.

Plans made on small tables. A kept plan is the plan for the table as it was when it was
made: a connection that prepared while the journal was empty keeps a sequential scan, and so
do the plans PostgreSQL caches for itself in every session (the foreign-key checks, the
journal's balance trigger), which ``plan_cache_mode=force_generic_plan`` (settings) makes
generic too. On a fresh install or a benchmark's fresh database, every order then scanned the
whole journal at commit, and got slower with every order (kiosk/raw 0.19 where the same run on
a grown database gave 0.36). PostgreSQL makes plans again when a table's statistics change:
``replan_when_doubled`` runs ``ANALYZE`` on a table each time its newest id reaches a power of
two, so the plans of every connection are made again while the table is small, and then at
each doubling, about twenty times in a table's life. Autovacuum's own ``ANALYZE`` comes later
(fifty changed rows and a tenth of the table, checked once a minute) and not at all where it
is turned off.

The health check in the first read. With ``CONN_HEALTH_CHECKS`` (settings) Django sends
``SELECT 1`` before a request's first statement on a kept connection, so a connection the
server dropped meanwhile is replaced instead of failing the request: a round trip of its own
on every kiosk request. ``first_read`` makes a request's first statement, a read, the check
itself: it is sent at once, and only if it fails on a connection that no longer answers is the
connection replaced and the read sent again, as it would have gone after Django's check.

Behind a pooler. PgBouncer refuses a connection that sends startup options, the way the plan
cache mode reaches PostgreSQL otherwise (settings). With ``DATABASE_BEHIND_POOLER`` set, each
new connection sets ``DATABASE_SESSION_SETTINGS`` itself, in one statement
(``apply_session_settings``); in session mode the server connection is the client's until it
disconnects, and the pooler's ``DISCARD ALL`` then resets it for the next client, which sets
them again.
"""

import logging

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

try:
    from django.db.backends.postgresql.base import ServerBindingCursor
except ImportError:  # no psycopg: the embedded SQLite default
    ServerBindingCursor = None

logger = logging.getLogger(__name__)

# Below this many rows a table's plans are cheap whatever they are; from here on, each
# doubling of a table analyses it again.
REPLAN_FROM_ROWS = 64


if ServerBindingCursor is not None:

    class PreparedCursor(ServerBindingCursor):
        """Binds parameters on the server and prepares every statement it runs (psycopg keeps
        the last 100 per connection)."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)


class PreparedDebugCursor(CursorDebugWrapper):
    """Django's query log (debugging, tests) for prepared statements: Django reads the
    statement text back from the psycopg cursor, where psycopg leaves none for a prepared
    statement, so the log gets the statement composed from its parameters instead."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)


def prepared_cursor():
    """A Django cursor (errors, logging and execute wrappers as usual) whose statements
    PostgreSQL prepares; Django's own cursor on any other database. Parameters are bound on
    the server, so each needs a type PostgreSQL can tell: cast where a bare parameter would
    be ambiguous (``%s::bigint``).

    Built from Django's public connection methods (what ``connection.cursor()`` does, with
    psycopg's cursor swapped): tests/commissary/test_db.py fails if an upgrade of Django or
    psycopg stops these statements being prepared, logged or wrapped. The connection is looked
    up once (``_default_connection``), not at each of the eight attributes read here."""
    db = _default_connection()
    if db.vendor != "postgresql":
        return db.cursor()
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        cursor = PreparedCursor(db.connection)
    if db.queries_logged:
        return PreparedDebugCursor(cursor, db)
    return db.make_cursor(cursor)


def _default_connection():
    """This thread's connection to the default database: what ``django.db.connection`` reads
    through on every attribute (a lookup in the thread's connections each time, about a
    microsecond), once. The hot path's functions read several of its attributes per call."""
    return connections[DEFAULT_DB_ALIAS]


def first_read(read):
    """``read(cursor)``'s result, run on a ``prepared_cursor`` as the first statement of a
    request, standing in for Django's connection health check (``CONN_HEALTH_CHECKS``): where
    the check is due, the read is sent without it, and if it fails because the connection no
    longer answers (the server restarted, or ended the session), the connection is replaced and
    the read run once more. ``read`` must change nothing (it may run twice). Where no check is
    due (checks off, done already, in a transaction, no connection yet), this is ``read`` on a
    ``prepared_cursor``."""
    db = _default_connection()
    is_check_due = (
        db.vendor == "postgresql"
        and db.connection is not None
        and db.health_check_enabled
        and not db.health_check_done
        and not db.in_atomic_block
    )
    if is_check_due:
        db.health_check_done = True  # this read is the check
        try:
            with prepared_cursor() as cursor:
                return read(cursor)
        except (InterfaceError, OperationalError):
            if db.is_usable():
                raise  # the connection answers: the failure is the read's own
            db.close()
    with prepared_cursor() as cursor:
        return read(cursor)


def replan_when_doubled(row_id: int | None, tables: tuple[str, ...]) -> None:
    """Call with the id just written to the first of ``tables`` (from its own sequence):
    when it is a power of two from REPLAN_FROM_ROWS on, the tables are analysed once the
    transaction commits, which makes every connection plan its statements on them again.
    Only the writer that got that id does it, so a doubling costs one ``ANALYZE``."""
    if (
        not row_id
        or row_id < REPLAN_FROM_ROWS
        or row_id & (row_id - 1)
        or connection.vendor != "postgresql"
    ):
        return
    transaction.on_commit(lambda: analyze(tables))


def analyze(tables: tuple[str, ...]) -> None:
    """``ANALYZE`` the tables, outside any transaction of the caller's. A failure is logged,
    never raised: the money was written; the plans stay as they were."""
    quoted = ", ".join(connection.ops.quote_name(table) for table in tables)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {quoted}")
    except DatabaseError:
        logger.warning("ANALYZE %s failed; plans on them stay as they were", quoted, exc_info=True)


def apply_session_settings(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: behind a pooler, set the session settings the startup
    options would have carried (one ``set_config`` statement for all of them)."""
    if connection.vendor != "postgresql" or not settings.DATABASE_BEHIND_POOLER:
        return
    names = list(settings.DATABASE_SESSION_SETTINGS)
    if not names:
        return
    calls = ", ".join("set_config(%s, %s, false)" for _ in names)
    values = [item for name in names for item in (name, settings.DATABASE_SESSION_SETTINGS[name])]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", values)
