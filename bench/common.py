"""Set-up that the benchmarks share: Django configured as production runs it, and bare psycopg
connections to the same database for the raw side of each comparison.

Each benchmark is run as a script (``python bench/ledger.py``), so Python puts this folder first
on the path, where ``bench/ledger.py`` would shadow the ``ledger`` app: each script puts the
project root there instead before it imports this module as ``bench.common``.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def benchmark_database_url() -> str:
    """``DATABASE_URL``, which must name a PostgreSQL database of the benchmark's own; the run
    stops otherwise."""
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres", "pgsql")):
        sys.exit("Set DATABASE_URL to a PostgreSQL database of the benchmark's own.")
    return database_url


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DEBUG"] = "false"  # measure what production runs: no query logging
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "commissary.settings")
    import django

    django.setup()


def raw_connection_params() -> dict:
    """Where Django connects, for the raw side and for creating the database, and the server
    settings Django's connections start with (``options``: the plan cache mode), so the raw
    side's statements, foreign-key checks and triggers are planned as the services' are."""
    from django.db import connection

    params = connection.get_connection_params()
    keys = ("dbname", "user", "password", "host", "port", "options")
    return {key: params[key] for key in keys if params.get(key)}


def open_raw(params: dict, **options):
    """A bare psycopg connection in autocommit, as Django opens its own."""
    import psycopg

    return psycopg.connect(**params, autocommit=True, **options)


def ensure_database(params: dict) -> None:
    """Create the database named in ``params`` if it is missing."""
    from psycopg import sql

    with open_raw({**params, "dbname": "postgres"}) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [params["dbname"]]
        ).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(params["dbname"])))


def recreate_database(params: dict) -> None:
    """Drop the database named in ``params`` (closing its sessions) and create it empty."""
    from psycopg import sql

    with open_raw({**params, "dbname": "postgres"}) as admin:
        name = sql.Identifier(params["dbname"])
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
