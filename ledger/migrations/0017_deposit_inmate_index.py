"""The deposit table's index on the inmate alone goes: ``deposit_inmate_newest`` leads with the
inmate, so every look-up by inmate (the foreign-key checks included) keeps an index, and each
deposit writes one index entry less when it is reserved and again when it is credited (a
credit changes the indexed status, so it writes every index anew). Dropped CONCURRENTLY on
PostgreSQL, so deposits go on meanwhile.
"""

from django.db import migrations, models

import django.db.models.deletion

TABLE = "ledger_deposit"
OLD = "ledger_deposit_inmate_id_b0b821eb"  # the name Django gave it (ledger.0001)


def forwards(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {OLD}")


def backwards(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(f"CREATE INDEX{concurrently} IF NOT EXISTS {OLD} ON {TABLE} (inmate_id)")


class Migration(migrations.Migration):
    atomic = False  # DROP/CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("facilities", "0008_verbose_names"),
        ("ledger", "0016_transaction_partial_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="deposit",
                    name="inmate",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deposits",
                        to="facilities.inmate",
                        verbose_name="inmate",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
