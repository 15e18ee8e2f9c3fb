"""Entries carry their transaction's instant; on PostgreSQL the entries table becomes a
declaratively partitioned table, by month on that instant (``ledger.partitions`` says why the
transactions table is not partitioned).

PostgreSQL: the table is rebuilt in this migration's transaction: a partitioned
``ledger_entry`` with a partition per month from the oldest entry's month to three months
ahead and a DEFAULT partition, every existing entry copied in with its transaction's instant,
then the old table's indexes, foreign keys and CHECKs made again under their own names (on
the partitioned table, so each partition has them) and its primary key as (id, created_at):
a partitioned table's primary key must contain the partition key. Django keeps ``id`` as the
primary key; ids still come from one sequence, so ``id`` stays unique. The journal's triggers
are created again on the partitioned table, from which PostgreSQL clones them onto every
partition, present and future. The whole journal is locked while this runs (minutes for tens
of millions of entries; see docs/operations.md).

SQLite: the column is added and filled from the transactions; the table stays unpartitioned.
Making the column NOT NULL rebuilds the table there, which drops its triggers, so the entry
guards of ``ledger 0004`` are written again, with one more: an entry dated unlike its
transaction is refused.
"""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models

PARTITION_TIMEZONE = "Asia/Shanghai"  # ledger.partitions.PARTITION_TIMEZONE, as of this migration
MONTHS_AHEAD = 3

APPEND_ONLY_REFUSAL = (
    "A journal entry is never changed or deleted: the journal is append-only "
    "(correct it with a reversing transaction)."
)
SQLITE_ENTRY_GUARDS = [
    *[
        f"""
        CREATE TRIGGER ledger_entry_append_only_{operation.lower()} BEFORE {operation}
        ON ledger_entry
        BEGIN
            SELECT RAISE(ABORT, '{APPEND_ONLY_REFUSAL}');
        END
        """
        for operation in ("UPDATE", "DELETE")
    ],
    """
    CREATE TRIGGER ledger_entry_must_balance AFTER INSERT ON ledger_entry
    BEGIN
        INSERT INTO ledger_journal_unsettled (transaction_id, sum_fen, refused)
        VALUES (NEW.transaction_id, NEW.amount_fen, 0)
        ON CONFLICT (transaction_id) DO UPDATE SET sum_fen = sum_fen + excluded.sum_fen;
        DELETE FROM ledger_journal_unsettled
        WHERE transaction_id = NEW.transaction_id AND sum_fen = 0;
    END
    """,
    # A trigger on the transactions that names the entries table: SQLite refuses to rebuild
    # a table another table's trigger refers to, so it is dropped before and made again.
    """
    CREATE TRIGGER ledger_transaction_needs_entries AFTER INSERT ON ledger_transaction
    WHEN NOT EXISTS (SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.id)
    BEGIN
        INSERT INTO ledger_journal_unsettled (transaction_id, sum_fen, refused)
        VALUES (NEW.id, 0, 0);
    END
    """,
    """
    CREATE TRIGGER ledger_entry_dated_as_transaction BEFORE INSERT ON ledger_entry
    WHEN NEW.created_at IS NOT (SELECT created_at FROM ledger_transaction
                                WHERE id = NEW.transaction_id)
    BEGIN
        SELECT RAISE(ABORT, 'A journal entry is dated as its transaction.');
    END
    """,
]
SQLITE_ENTRY_TRIGGERS = [
    "ledger_entry_append_only_update",
    "ledger_entry_append_only_delete",
    "ledger_entry_must_balance",
    "ledger_transaction_needs_entries",
    "ledger_entry_dated_as_transaction",
]


def fill_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for trigger in SQLITE_ENTRY_TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    schema_editor.execute(
        "UPDATE ledger_entry SET created_at = (SELECT t.created_at FROM ledger_transaction t "
        "WHERE t.id = ledger_entry.transaction_id)"
    )


def guard_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for trigger in SQLITE_ENTRY_TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in SQLITE_ENTRY_GUARDS:
        schema_editor.execute(statement)


def unguard_on_sqlite(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    schema_editor.execute("DROP TRIGGER IF EXISTS ledger_entry_dated_as_transaction")


def _definitions(cursor, contype: str) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'ledger_entry'::regclass AND contype = %s ORDER BY conname",
        [contype],
    )
    return cursor.fetchall()


def partition_on_postgresql(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("LOCK TABLE ledger_transaction, ledger_entry IN SHARE MODE")
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'ledger_entry' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'ledger_entry'::regclass) ORDER BY indexname"
        )
        indexes = [row[0] for row in cursor.fetchall()]
        foreign_keys = _definitions(cursor, "f")
        checks = _definitions(cursor, "c")
        cursor.execute(
            """
            CREATE TABLE ledger_entry_partitioned (
                id bigint GENERATED BY DEFAULT AS IDENTITY,
                amount_fen bigint NOT NULL,
                account_id bigint NOT NULL,
                transaction_id bigint NOT NULL,
                created_at timestamp with time zone NOT NULL
            ) PARTITION BY RANGE (created_at)
            """
        )
        cursor.execute(
            """
            SELECT to_char(m, 'YYYYMM'), (m::timestamp AT TIME ZONE %(zone)s),
                   ((m + interval '1 month')::timestamp AT TIME ZONE %(zone)s)
            FROM generate_series(
                LEAST(
                    (SELECT date_trunc('month', MIN(t.created_at) AT TIME ZONE %(zone)s)
                     FROM ledger_transaction t),
                    date_trunc('month', now() AT TIME ZONE %(zone)s)),
                date_trunc('month', now() AT TIME ZONE %(zone)s)
                    + %(ahead)s * interval '1 month',
                interval '1 month') m
            """,
            {"zone": PARTITION_TIMEZONE, "ahead": MONTHS_AHEAD},
        )
        for suffix, start, end in cursor.fetchall():
            cursor.execute(
                f"CREATE TABLE ledger_entry_p{suffix} PARTITION OF ledger_entry_partitioned "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        cursor.execute("CREATE TABLE ledger_entry_default PARTITION OF ledger_entry_partitioned DEFAULT")
        cursor.execute(
            "INSERT INTO ledger_entry_partitioned (id, amount_fen, account_id, transaction_id, "
            "created_at) SELECT e.id, e.amount_fen, e.account_id, e.transaction_id, t.created_at "
            "FROM ledger_entry e JOIN ledger_transaction t ON t.id = e.transaction_id"
        )
        cursor.execute("DROP TABLE ledger_entry")
        cursor.execute("ALTER TABLE ledger_entry_partitioned RENAME TO ledger_entry")
        cursor.execute("ALTER SEQUENCE ledger_entry_partitioned_id_seq RENAME TO ledger_entry_id_seq")
        cursor.execute(
            "SELECT setval('ledger_entry_id_seq', COALESCE(MAX(id), 0) + 1, false) FROM ledger_entry"
        )
        cursor.execute(
            "ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_pkey PRIMARY KEY (id, created_at)"
        )
        for definition in indexes:
            cursor.execute(definition)
        for name, definition in (*checks, *foreign_keys):
            cursor.execute(f'ALTER TABLE ledger_entry ADD CONSTRAINT "{name}" {definition}')
        cursor.execute("ANALYZE ledger_entry")


APPEND_ONLY = pgtrigger.compiler.Trigger(
    name="entry_append_only",
    sql=pgtrigger.compiler.UpsertTriggerSql(
        func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;",
        hash="9af85c6b3f9c8411a23816b1a171c8b8783d9c9c",
        operation="UPDATE OR DELETE",
        pgid="pgtrigger_entry_append_only_cb569",
        table="ledger_entry",
        when="BEFORE",
    ),
)


class Migration(migrations.Migration):
    # The rebuild and its triggers are one unit: half done, the journal would be unguarded.
    atomic = True

    dependencies = [
        ("ledger", "0010_policy_change_requests_and_withdrawal"),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(model_name="entry", name="entry_append_only"),
        pgtrigger.migrations.RemoveTrigger(model_name="entry", name="entry_transaction_balances"),
        pgtrigger.migrations.RemoveTrigger(model_name="transaction", name="transaction_has_entries"),
        migrations.AddField(
            model_name="entry",
            name="created_at",
            field=models.DateTimeField(
                null=True, help_text="The transaction's instant: the partition key."
            ),
        ),
        migrations.RunPython(fill_on_sqlite, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(partition_on_postgresql, elidable=False),
        migrations.AlterField(
            model_name="entry",
            name="created_at",
            field=models.DateTimeField(help_text="The transaction's instant: the partition key."),
        ),
        migrations.RunPython(guard_on_sqlite, unguard_on_sqlite, elidable=False),
        pgtrigger.migrations.AddTrigger(model_name="entry", trigger=APPEND_ONLY),
        pgtrigger.migrations.AddTrigger(
            model_name="entry",
            trigger=pgtrigger.compiler.Trigger(
                name="entry_transaction_balances",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    func="IF NEW.created_at IS DISTINCT FROM (SELECT created_at FROM ledger_transaction WHERE id = NEW.transaction_id) THEN RAISE EXCEPTION 'entry % is not dated as its transaction %', NEW.id, NEW.transaction_id USING ERRCODE = 'integrity_constraint_violation'; END IF; IF (SELECT SUM(amount_fen) FROM ledger_entry WHERE transaction_id = NEW.transaction_id AND created_at = NEW.created_at) <> 0 THEN RAISE EXCEPTION 'transaction % does not balance', NEW.transaction_id USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NULL;",
                    hash="048df6c7ac62229a8e85231430c59667f4945a3d",
                    operation="INSERT",
                    pgid="pgtrigger_entry_transaction_balances_5acc4",
                    table="ledger_entry",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="transaction",
            trigger=pgtrigger.compiler.Trigger(
                name="transaction_has_entries",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    constraint="CONSTRAINT",
                    func="IF NOT EXISTS (SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.id AND created_at = NEW.created_at) THEN RAISE EXCEPTION 'transaction % has no entries', NEW.id USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NULL;",
                    hash="71b8940954b0d4df15d2d2aed10e1f5505e4c948",
                    operation="INSERT",
                    pgid="pgtrigger_transaction_has_entries_9ef97",
                    table="ledger_transaction",
                    timing="DEFERRABLE INITIALLY DEFERRED",
                    when="AFTER",
                ),
            ),
        ),
    ]
