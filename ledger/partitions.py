"""The journal's entries partitioned by month on PostgreSQL: creating months ahead, and the
names and bounds every partition shares.

Only ``ledger_entry`` is partitioned (migration ``ledger 0011``). ``ledger_transaction`` is
not: PostgreSQL requires a unique constraint of a partitioned table to include its partition
key, so the unique (scope, idempotency key) that makes every money operation happen once
(invariant 6) would become unique per month, and a foreign key must point at a unique key, so
deposits, account events, money requests, reversals and refunds could no longer reference a
transaction by its id. The entries are the largest table, nothing refers to them, and each
carries its transaction's instant (``Entry.created_at``), which a deferred trigger keeps equal
to the transaction's.

Months are calendar months in ``PARTITION_TIMEZONE`` (China's one zone): a facility in
another zone reads two partitions for one of its local months. Rows of a month that has no
partition yet go to the DEFAULT partition, so a late scheduler never refuses money;
``ensure_partitions`` (a daily task) creates months ahead and, should the default partition
hold rows of a month it creates, moves them into it in the same transaction.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pgtrigger
from django.db import connection, transaction
from django.utils import timezone

PARENT = "ledger_entry"
DEFAULT_PARTITION = "ledger_entry_default"
PARTITION_TIMEZONE = "Asia/Shanghai"
MONTHS_AHEAD = 3
# Creating a partition waits for a lock on the default partition; a long query holding it
# must not hold up the postings that queue behind that wait. The next daily run tries again.
LOCK_TIMEOUT = "5s"


def month_of(instant: dt.datetime) -> dt.date:
    """The first day of the partition month that holds ``instant``."""
    return instant.astimezone(ZoneInfo(PARTITION_TIMEZONE)).date().replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_start(month: dt.date) -> dt.datetime:
    return dt.datetime.combine(month, dt.time.min, tzinfo=ZoneInfo(PARTITION_TIMEZONE))


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_p{month:%Y%m}"


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass)",
            [PARENT],
        )
        return cursor.fetchone()[0]


def attached_months() -> list[dt.date]:
    """The months that have a partition attached, oldest first (the default partition aside)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname <> %s ORDER BY c.relname",
            [PARENT, DEFAULT_PARTITION],
        )
        names = [row[0] for row in cursor.fetchall()]
    return [dt.date(int(name[-6:-2]), int(name[-2:]), 1) for name in names]


def ensure_partitions(*, now: dt.datetime | None = None, ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the partitions of this month and the ``ahead`` months after it that are missing;
    return the names created. Idempotent; does nothing on a database that is not partitioned
    (SQLite, or PostgreSQL before the migration)."""
    if not is_partitioned():
        return []
    first = month_of(now or timezone.now())
    existing = set(attached_months())
    created = []
    for offset in range(ahead + 1):
        month = add_months(first, offset)
        if month not in existing:
            create_partition(month)
            created.append(partition_name(month))
    return created


def create_partition(month: dt.date) -> None:
    """Attach a partition for ``month``, moving in any rows the default partition holds for it.

    The partition is made as a table of its own, filled, then attached: ATTACH takes only a
    SHARE UPDATE EXCLUSIVE lock on the journal, so postings go on; it clones the journal's
    triggers (append-only, balance) and indexes onto the new partition. The bounds CHECK added
    first spares ATTACH a scan of the new table."""
    name = partition_name(month)
    start, end = month_start(month), month_start(add_months(month, 1))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(
            f"ALTER TABLE {name} ADD CONSTRAINT {name}_bounds "
            "CHECK (created_at IS NOT NULL AND created_at >= %s AND created_at < %s)",
            [start, end],
        )
        cursor.execute(
            f"INSERT INTO {name} SELECT * FROM {DEFAULT_PARTITION} "  # noqa: S608 - names built here from a date
            "WHERE created_at >= %s AND created_at < %s",
            [start, end],
        )
        if cursor.rowcount:
            # Moving rows is the one delete the journal allows: the same rows, unchanged,
            # go into their month's partition in this same transaction.
            with pgtrigger.ignore("ledger.Entry:entry_append_only"):
                cursor.execute(
                    f"DELETE FROM {DEFAULT_PARTITION} WHERE created_at >= %s AND created_at < %s",  # noqa: S608 - constant names
                    [start, end],
                )
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds")
