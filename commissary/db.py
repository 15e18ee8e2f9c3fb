"""A cursor for the few statements every kiosk order sends: on PostgreSQL their plans are made
once per connection and kept (server-side binding, prepared on first use), not planned again on
every request.

Django binds parameters on the client and prepares nothing, and leaves it so by default because
prepared statements do not survive a connection pooler in transaction mode (PgBouncer before
1.21). Planning the order's statements (the device and session read, the account lock, the
stock read and the writes) took more PostgreSQL time than running them: about 1.1 ms of an
order's 3 ms there. So these statements, and only these, are prepared; a pooler in front of
the database must run in session mode (docs/operations.md).

Everywhere else ``connection.cursor()`` stays as Django makes it. On SQLite this is that
cursor.
"""

from django.db import connection

try:
    from django.db.backends.postgresql.base import ServerBindingCursor
except ImportError:  # no psycopg: the embedded SQLite default
    ServerBindingCursor = None


if ServerBindingCursor is not None:

    class PreparedCursor(ServerBindingCursor):
        """Binds parameters on the server and prepares every statement it runs (psycopg keeps
        the last 100 per connection). ``keeps_query_text``: for Django's query log (debugging,
        tests), which reads the statement from the cursor, where psycopg leaves none for a
        prepared statement."""

        keeps_query_text = False

        def execute(self, query, params=None, *, prepare=None, binary=None):
            super().execute(query, params, prepare=True, binary=binary)
            if self.keeps_query_text and self._query is None:
                self._query = self._convert_query(query, params)
            return self


def prepared_cursor():
    """A Django cursor (errors, logging and execute wrappers as usual) whose statements
    PostgreSQL prepares; Django's own cursor on any other database. Parameters are bound on
    the server, so each needs a type PostgreSQL can tell: cast where a bare parameter would
    be ambiguous (``%s::bigint``)."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = PreparedCursor(connection.connection)
        cursor.keeps_query_text = connection.queries_logged
        return connection._prepare_cursor(cursor)
