"""The transaction table's indexes on columns that are NULL on nearly every row (a refund's
original, the staff member who made or approved a transaction) become partial, holding only the
rows that name one; the index on the inmate alone goes, as ``transaction_inmate_newest`` leads
with the inmate. Every posting writes a row here, so each index dropped or emptied is one
write less on every deposit and purchase.

On PostgreSQL the indexes are built and dropped CONCURRENTLY (outside a transaction), so
postings go on while a large table is indexed; each new index is built before the one it
replaces goes, so the foreign-key checks always have one. On SQLite plain statements: Django's
own operations would rebuild the table there and lose the journal's guard triggers.
"""

from django.conf import settings
from django.db import migrations, models

import django.db.models.deletion

TABLE = "ledger_transaction"
PARTIAL = ("refund_of", "created_by", "approved_by")
# The names Django gave the single-column indexes (ledger.0001).
OLD = {
    "inmate": "ledger_transaction_inmate_id_6cea4830",
    "refund_of": "ledger_transaction_refund_of_id_a8682648",
    "created_by": "ledger_transaction_created_by_id_c2ba222d",
    "approved_by": "ledger_transaction_approved_by_id_975cbe5b",
}


def _run(schema_editor, statements):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for statement in statements:
        schema_editor.execute(statement.format(concurrently=concurrently))


def _drop_invalid(schema_editor, name):
    """An index a failed CONCURRENTLY build left behind (PostgreSQL marks it invalid)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        )
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY {name}")


def forwards(apps, schema_editor):
    for field in PARTIAL:
        _drop_invalid(schema_editor, f"transaction_{field}")
        _run(
            schema_editor,
            [
                f"CREATE INDEX{{concurrently}} IF NOT EXISTS transaction_{field} "
                f"ON {TABLE} ({field}_id) WHERE {field}_id IS NOT NULL"
            ],
        )
    _run(schema_editor, [f"DROP INDEX{{concurrently}} IF EXISTS {name}" for name in OLD.values()])


def backwards(apps, schema_editor):
    for field, name in OLD.items():
        _drop_invalid(schema_editor, name)
        _run(
            schema_editor,
            [f"CREATE INDEX{{concurrently}} IF NOT EXISTS {name} ON {TABLE} ({field}_id)"],
        )
    _run(
        schema_editor,
        [f"DROP INDEX{{concurrently}} IF EXISTS transaction_{field}" for field in PARTIAL],
    )


def _foreign_key(to, related_name, verbose_name):
    return models.ForeignKey(
        blank=True,
        db_index=False,
        null=True,
        on_delete=django.db.models.deletion.PROTECT,
        related_name=related_name,
        to=to,
        verbose_name=verbose_name,
    )


class Migration(migrations.Migration):
    atomic = False  # CREATE/DROP INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("facilities", "0008_verbose_names"),
        ("ledger", "0015_deposit_depositor_newest_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="transaction",
                    name="approved_by",
                    field=_foreign_key(settings.AUTH_USER_MODEL, "+", "approved by"),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="created_by",
                    field=_foreign_key(settings.AUTH_USER_MODEL, "+", "created by"),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="inmate",
                    field=_foreign_key("facilities.inmate", "transactions", "inmate"),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="refund_of",
                    field=_foreign_key("ledger.transaction", "refunds", "refund of"),
                ),
                *(
                    migrations.AddIndex(
                        model_name="transaction",
                        index=models.Index(
                            condition=models.Q((f"{field}__isnull", False)),
                            fields=[field],
                            name=f"transaction_{field}",
                        ),
                    )
                    for field in PARTIAL
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
