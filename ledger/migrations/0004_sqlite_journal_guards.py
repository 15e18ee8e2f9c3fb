"""The journal's database guards on the embedded SQLite database (invariants 1 and 5).

PostgreSQL has them through django-pgtrigger (``ledger.models``): UPDATE and DELETE of
transactions, entries and account events are refused, and deferred constraint triggers refuse
at commit a transaction whose entries do not sum to zero or that has none. pgtrigger does
nothing on SQLite, so this migration writes the same rules as SQLite triggers, there only
(on PostgreSQL it does nothing).

What SQLite can enforce, and how:

- Append-only: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers on ``ledger_transaction``,
  ``ledger_entry`` and ``ledger_accountevent`` abort the statement. Always on.
- Balance and "has entries", checked at commit: SQLite has no deferred triggers, and a row
  trigger cannot tell the last leg of a transaction from the first, so the check at commit is
  borrowed from the one thing SQLite does defer, a foreign key declared ``DEFERRABLE INITIALLY
  DEFERRED`` (as Django declares every foreign key there). ``ledger_journal_unsettled`` holds a
  row for each journal transaction that has no entries yet or whose entries do not sum to zero:
  a new transaction adds one (unless its entries came first), each new entry adds its amount,
  and the row goes when the sum is zero again. Every row of that table points at
  ``ledger_journal_never``, which can never hold a row (``CHECK (0)``), so each is a deferred
  foreign-key violation, and SQLite refuses to COMMIT while any is left ("FOREIGN KEY
  constraint failed"); outside a transaction the statement itself is refused. The order of the
  inserts does not matter (the services write the transaction, then its entries in one
  statement), and a savepoint rolled back takes its rows and violations with it.

What it cannot enforce:

- The commit check needs ``PRAGMA foreign_keys = ON``. Django turns it on for every connection
  it opens; the ``sqlite3`` shell and Django's schema editor (during migrations) turn it off.
  There, an unbalanced transaction can be committed: its row stays in
  ``ledger_journal_unsettled``, the next ``migrate`` stops on it (``PRAGMA foreign_key_check``)
  and nightly reconciliation reports it (``transaction_unbalanced``).
- Anyone who can write to the database file can drop a trigger; these guards stop a bug or a
  careless statement, as on PostgreSQL, not the owner of the file.
- Django rebuilds a SQLite table for many schema changes (``_remake_table``), and a rebuilt
  table loses its triggers. A later migration that alters one of these three tables must
  create its triggers again; the SQLite test job (``tests/sqlite/``) fails until it does.
"""

from django.db import migrations

APPEND_ONLY = {
    "ledger_transaction": "A journal transaction",
    "ledger_entry": "A journal entry",
    "ledger_accountevent": "An account event",
}

REFUSAL = (
    "is never changed or deleted: the journal is append-only "
    "(correct it with a reversing transaction)."
)

GUARDS = [
    *[
        f"""
        CREATE TRIGGER {table}_append_only_{operation.lower()} BEFORE {operation} ON {table}
        BEGIN
            SELECT RAISE(ABORT, '{what} {REFUSAL}');
        END
        """
        for table, what in APPEND_ONLY.items()
        for operation in ("UPDATE", "DELETE")
    ],
    "CREATE TABLE ledger_journal_never (id integer NOT NULL PRIMARY KEY, CHECK (0))",
    """
    CREATE TABLE ledger_journal_unsettled (
        transaction_id integer NOT NULL PRIMARY KEY,
        sum_fen bigint NOT NULL,
        refused integer NOT NULL
            REFERENCES ledger_journal_never (id) DEFERRABLE INITIALLY DEFERRED
    )
    """,
    """
    CREATE TRIGGER ledger_transaction_needs_entries AFTER INSERT ON ledger_transaction
    WHEN NOT EXISTS (SELECT 1 FROM ledger_entry WHERE transaction_id = NEW.id)
    BEGIN
        INSERT INTO ledger_journal_unsettled (transaction_id, sum_fen, refused)
        VALUES (NEW.id, 0, 0);
    END
    """,
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
]

TRIGGERS = [
    *[
        f"{table}_append_only_{operation}"
        for table in APPEND_ONLY
        for operation in ("update", "delete")
    ],
    "ledger_transaction_needs_entries",
    "ledger_entry_must_balance",
]


def install_guards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in GUARDS:
        schema_editor.execute(statement)


def remove_guards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for trigger in TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    schema_editor.execute("DROP TABLE IF EXISTS ledger_journal_unsettled")
    schema_editor.execute("DROP TABLE IF EXISTS ledger_journal_never")


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0003_idempotency_scopes_and_account_events"),
    ]

    operations = [
        migrations.RunPython(install_guards, remove_guards, elidable=False),
    ]
