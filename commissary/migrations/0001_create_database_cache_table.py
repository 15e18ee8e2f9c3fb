"""The database cache's table, which ``migrate`` did not make: without ``REDIS_URL`` the cache
falls back to it, and every kiosk sign-in answered 500 until someone ran ``createcachetable``.

Made whatever the cache setting is at migrate time (a site may drop Redis later), with the
columns ``createcachetable`` gives it, and left alone where it already exists (sites that ran
``createcachetable``), so the step is safe to run anywhere.
"""

from django.conf import settings
from django.core.management.commands.createcachetable import Command as CreateCacheTable
from django.db import migrations


def create_database_cache_tables(apps, schema_editor):
    tables = {settings.DATABASE_CACHE_TABLE}
    tables |= {
        cache["LOCATION"]
        for cache in settings.CACHES.values()
        if cache["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    }
    command = CreateCacheTable()
    command.verbosity = 0
    for table in sorted(tables):
        command.create_table(schema_editor.connection.alias, table, dry_run=False)


class Migration(migrations.Migration):
    dependencies = []

    operations = [
        migrations.RunPython(create_database_cache_tables, migrations.RunPython.noop, elidable=False)
    ]
