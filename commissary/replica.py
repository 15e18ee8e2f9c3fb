"""Reads that can wait go to the read replica; every write and every read that decides money
stays on the primary.

A streaming replica (``DATABASE_REPLICA_URL``, database alias ``replica``) is a few moments
behind the primary. Reports, the dashboard, CSV exports, the statements' reads and
reconciliation's screening can read there; a balance, a cap or a stock count that decides
whether money moves cannot. So nothing goes to the replica unless its code asks, in a block:

    with replica.reads_that_can_wait():
        rows = selectors.sales_by_product(...)

Inside the block the router (``ReplicaRouter``, in ``DATABASE_ROUTERS``) sends the ORM's reads
to the replica; outside it, and inside any transaction on the primary (a service's
``transaction.atomic()``, where a read may decide money), every read goes to the primary.
Writes always go to the primary, and ``select_for_update`` is a write to Django. Raw SQL names
its connection (``alias_for_reads_that_can_wait()``). A block holds reads only: never call a
service inside one (a service's read before its transaction, such as the payment a callback
looks up, would read the replica and could miss a row the primary has). So a write inside a
block is refused with ``WriteInReadsThatCanWait``: the router's ``db_for_write`` (every ORM
write, ``select_for_update`` included) raises it, and so does a raw statement that writes or
locks rows on any connection of the thread while the block is open.

On entering a block the replica is asked how far behind it is (one statement). Where it does
not answer, or is more than ``DATABASE_REPLICA_MAX_LAG_SECONDS`` behind, the block reads on the
primary instead, and the log says so once each time the replica's state changes (never an error
page). Without a replica configured every block reads on the primary, as before.
"""

import contextlib
import contextvars
import dataclasses
import functools
import logging
import re

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

REPLICA_DB_ALIAS = "replica"

logger = logging.getLogger(__name__)

# How far behind the replica is, in seconds: nothing when every WAL record it received is
# applied (an idle primary sends none), else the age of the last transaction it applied.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
    ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())
END
"""


class WriteInReadsThatCanWait(RuntimeError):
    """A write (or a row lock) inside ``reads_that_can_wait``: a programming error, since the
    reads before it may have come from the replica, a few moments behind."""

    def __init__(self, what: str):
        super().__init__(
            f"{what} inside replica.reads_that_can_wait(): a block holds reads that can wait "
            "only; its reads may be a few moments behind the primary, so a service, a write "
            "or a row lock belongs outside it."
        )


# A raw statement that writes or locks rows: it starts with a writing verb, or locks with FOR
# UPDATE / NO KEY UPDATE / SHARE / KEY SHARE.
_WRITING_SQL = re.compile(
    r"^\s*(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|COPY|CREATE|ALTER|DROP)\b"
    r"|\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b",
    re.IGNORECASE,
)


def _refuse_writing_sql(execute, sql, params, many, context):
    if isinstance(sql, str) and _WRITING_SQL.search(sql):
        raise WriteInReadsThatCanWait(f"The statement {sql.split(None, 1)[0]} …")
    return execute(sql, params, many, context)


@dataclasses.dataclass(frozen=True)
class Reading:
    """Where a block's reads go, and why.

    ``state``: ``in_use`` (the replica), ``behind`` (more than the limit behind: the
    primary), ``unavailable`` (no answer: the primary) or ``none`` (no replica configured)."""

    alias: str
    state: str
    lag_seconds: float | None = None

    @property
    def on_replica(self) -> bool:
        return self.alias == REPLICA_DB_ALIAS


PRIMARY = Reading(DEFAULT_DB_ALIAS, "none")

_current: contextvars.ContextVar[Reading | None] = contextvars.ContextVar(
    "reads_that_can_wait", default=None
)
# The state last logged by this process, so a replica that stays behind or down is logged once.
_last_logged_state = "in_use"


def is_configured() -> bool:
    return REPLICA_DB_ALIAS in settings.DATABASES


def replica_lag_seconds() -> float | None:
    """How many seconds the replica is behind the primary, or None when it does not answer (or
    none is configured). The connection is dropped after a failure, so the next ask connects
    afresh."""
    if not is_configured():
        return None
    replica = connections[REPLICA_DB_ALIAS]
    try:
        with replica.cursor() as cursor:
            cursor.execute(LAG_SQL)
            (lag,) = cursor.fetchone()
    except DatabaseError:
        logger.debug("The read replica did not answer", exc_info=True)
        with contextlib.suppress(DatabaseError):
            replica.close()
        return None
    return max(0.0, float(lag or 0))


def choose_reading() -> Reading:
    """Where reads that can wait should go now: the replica if it answers and is within the
    limit, else the primary (logged when this changes)."""
    if not is_configured():
        return PRIMARY
    lag = replica_lag_seconds()
    if lag is None:
        reading = Reading(DEFAULT_DB_ALIAS, "unavailable")
    elif lag > settings.DATABASE_REPLICA_MAX_LAG_SECONDS:
        reading = Reading(DEFAULT_DB_ALIAS, "behind", lag)
    else:
        reading = Reading(REPLICA_DB_ALIAS, "in_use", lag)
    _log_change(reading)
    return reading


def _log_change(reading: Reading) -> None:
    global _last_logged_state
    if reading.state == _last_logged_state:
        return
    _last_logged_state = reading.state
    if reading.state == "behind":
        logger.warning(
            "The read replica is %.1f s behind (limit %s s): reports read on the primary",
            reading.lag_seconds,
            settings.DATABASE_REPLICA_MAX_LAG_SECONDS,
        )
    elif reading.state == "unavailable":
        logger.warning("The read replica does not answer: reports read on the primary")
    else:
        logger.info(
            "The read replica is %.1f s behind: reports read there again", reading.lag_seconds
        )


@contextlib.contextmanager
def reads_that_can_wait():
    """A block whose ORM reads may go to the replica (see the module's docstring). Yields the
    ``Reading`` chosen; a block inside another keeps the outer one's choice."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    token = _current.set(choose_reading())
    try:
        with contextlib.ExitStack() as refusing:
            for alias in connections:
                refusing.enter_context(connections[alias].execute_wrapper(_refuse_writing_sql))
            yield _current.get()
    finally:
        _current.reset(token)


def reading() -> Reading:
    """The current block's ``Reading`` (the primary outside any block)."""
    return _current.get() or PRIMARY


def alias_for_reads_that_can_wait() -> str:
    """For raw SQL: the connection a read that can wait uses now (the block's, or a fresh
    choice outside a block)."""
    return (_current.get() or choose_reading()).alias


def view_reads_can_wait(view):
    """A view whose reads can all wait: it runs, and its template renders, in one block."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        with reads_that_can_wait():
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            return response

    return wrapped


class ReplicaRouter:
    """The ORM's reads go to the replica only inside ``reads_that_can_wait`` (when the replica
    was fit at its start) and outside any transaction on the primary; everything else, and
    every write and migration, goes to the primary. A write inside a block is refused."""

    def db_for_read(self, model, **hints):
        chosen = _current.get()
        if chosen is None or connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return chosen.alias

    def db_for_write(self, model, **hints):
        if _current.get() is not None:
            raise WriteInReadsThatCanWait(f"A write to {model._meta.label}")
        return DEFAULT_DB_ALIAS

    def allow_relation(self, first, second, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The replica is a copy of the primary's files: it gets the schema by replication.
        return db == DEFAULT_DB_ALIAS
