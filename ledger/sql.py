"""Raw SQL that means the same on PostgreSQL and on the embedded SQLite database.

The batch work (rollover, expiry, reconciliation, statements) runs set-based SQL through a
cursor. psycopg sends an instant as a ``timestamptz`` and reads one back aware; SQLite has no
such type, so the ORM keeps instants there as naive UTC text (``2026-01-31 16:00:00``) and
compares them as text. A raw parameter handed to SQLite as it is would be written with its
offset (``2026-02-01 00:00:00+08:00``) and compared as text against UTC values, which is wrong
by the offset; a value read back comes as a naive datetime (or as text, from an expression),
on which ``timezone.localtime`` fails.

So every raw statement of the batch work goes through ``cursor()`` below: it adapts each
parameter the way the ORM would (instants to the database's own form, dates, UUIDs) and hands
back instants as aware UTC datetimes. The same adaptation is ``adapt``, for callers with a
cursor of their own.
"""

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def adapt(value):
    """One parameter as the ORM would send it to this database."""
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dt.date):
        return connection.ops.adapt_datefield_value(value)
    if isinstance(value, uuid.UUID) and connection.vendor != "postgresql":
        return value.hex
    return value


def adapt_params(params: Sequence | Mapping | None):
    """Positional (``%s``) or named (``%(name)s``) parameters, each adapted."""
    if params is None:
        return None
    if isinstance(params, Mapping):
        return {name: adapt(value) for name, value in params.items()}
    return [adapt(value) for value in params]


def instant(value: dt.datetime | str | None) -> dt.datetime | None:
    """An instant read back from the database, as an aware datetime. SQLite gives a naive
    datetime for a column and text for an expression over one; both are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    if settings.USE_TZ and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


def _converted(row: tuple) -> tuple:
    return tuple(instant(value) if isinstance(value, dt.datetime) else value for value in row)


class LedgerCursor:
    """A database cursor whose parameters are adapted and whose instants come back aware.
    Text that holds an instant (an expression such as ``MIN(created_at)`` on SQLite) is not
    guessed at: pass it through ``instant``."""

    def __init__(self, cursor):
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence | Mapping | None = None) -> None:
        self._cursor.execute(sql, adapt_params(params))

    def fetchone(self) -> tuple | None:
        row = self._cursor.fetchone()
        return None if row is None else _converted(row)

    def fetchall(self) -> list[tuple]:
        return [_converted(row) for row in self._cursor.fetchall()]

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


@contextmanager
def cursor(using: str = DEFAULT_DB_ALIAS):
    """``connection.cursor()`` for raw SQL that must mean the same on every database; on the
    connection ``using`` names (the read replica, for reads that can wait)."""
    with connections[using].cursor() as raw:
        yield LedgerCursor(raw)
