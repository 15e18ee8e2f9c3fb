"""The audit trail is append-only, as the journal is (``accounts.models.AuditEntry``).

PostgreSQL: pgtrigger's triggers refuse any DELETE of an entry, and any UPDATE except the one
Django makes when a person with entries is deleted (``actor`` set to NULL, nothing else).
SQLite: pgtrigger does nothing there, so the same two rules are written as SQLite triggers, on
SQLite only. The UPDATE rule compares every column but ``actor_id``, read from the table as it
is when this runs. A later migration that makes Django rebuild ``auditlog_logentry`` on SQLite
loses these triggers and must create them again (the SQLite test job checks them).
"""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations


REFUSAL = "An audit entry is never changed or deleted: the audit trail is append-only."


def install_sqlite_guards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        columns = [
            column.name
            for column in connection.introspection.get_table_description(
                cursor, "auditlog_logentry"
            )
            if column.name != "actor_id"
        ]
    changed = " OR ".join(f'NEW."{name}" IS NOT OLD."{name}"' for name in columns)
    schema_editor.execute(
        "CREATE TRIGGER auditlog_logentry_append_only_delete BEFORE DELETE ON auditlog_logentry "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    )
    schema_editor.execute(
        "CREATE TRIGGER auditlog_logentry_append_only_update BEFORE UPDATE ON auditlog_logentry "
        f"WHEN NEW.actor_id IS NOT NULL OR {changed} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    )


def remove_sqlite_guards(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for operation in ("delete", "update"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS auditlog_logentry_append_only_{operation}")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_depositor_links_and_blocks'),
        ('auditlog', '0017_add_actor_email'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
            ],
            options={
                'verbose_name': 'audit entry',
                'verbose_name_plural': 'audit entries',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('auditlog.logentry',),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='auditentry',
            trigger=pgtrigger.compiler.Trigger(name='audit_entry_never_deleted', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot delete rows from % table', TG_TABLE_NAME;", hash='65ddb7112d2cfdf95faf0dd9e4a09f3e0fa7eab7', operation='DELETE', pgid='pgtrigger_audit_entry_never_deleted_56597', table='auditlog_logentry', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='auditentry',
            trigger=pgtrigger.compiler.Trigger(name='audit_entry_never_changed', sql=pgtrigger.compiler.UpsertTriggerSql(condition="WHEN (NEW.actor_id IS NOT NULL OR (to_jsonb(OLD.*) - 'actor_id') IS DISTINCT FROM (to_jsonb(NEW.*) - 'actor_id'))", func="RAISE EXCEPTION 'pgtrigger: Cannot update rows from % table', TG_TABLE_NAME;", hash='8beb368a6de6e4bc9f874682b09bd6893b5f0429', operation='UPDATE', pgid='pgtrigger_audit_entry_never_changed_0f1c7', table='auditlog_logentry', when='BEFORE')),
        ),
        migrations.RunPython(install_sqlite_guards, remove_sqlite_guards, elidable=False),
    ]
