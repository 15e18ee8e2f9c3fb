"""The archive steps of docs/operations.md ("Archiving an old month of the journal"), run as
written: the shell blocks of that section are read from the document and run by bash with the
installed PostgreSQL client programs, only the server, database, directory and month put in
for the example's (``db.internal``, ``commissary``, ``/archive``, 2026-01). The month is
detached, dumped with ``pg_dump`` and dropped; reconciliation stays clean without the table;
and the dump, restored into a throwaway database as the section says, holds the month's
entries: their count, sum and per-account sums are the totals the detach kept.

Without the client programs the test skips, except under CI (``CI`` set), where it fails: CI
installs PostgreSQL, so a missing ``pg_dump`` there is a broken job (as in tests/backups).
"""

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.db import connection
from django.db.models import Sum

from ledger import batch, partitions
from ledger.models import ArchivedAccountTotal, ArchivedJournalMonth, Entry, ScheduledRun
from ledger.reconciliation import run_checks
from tests import clusters
from tests.factories import InmateFactory

from .helpers import SHANGHAI, deposit, post_purchase

REPOSITORY = Path(__file__).resolve().parents[2]
SECTION = "### Archiving an old month of the journal (PostgreSQL)"
CLIENT_PROGRAMS = ("pg_dump", "pg_restore", "psql", "createdb")
JANUARY = dt.date(2018, 1, 1)
FEBRUARY = dt.date(2018, 2, 1)


def _at(month: dt.date, day: int) -> dt.datetime:
    return dt.datetime(month.year, month.month, day, 12, tzinfo=SHANGHAI)


def documented_blocks() -> list[str]:
    """The ``sh`` blocks of the archive section of docs/operations.md, in order."""
    text = (REPOSITORY / "docs" / "operations.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.find("\n## ", 1) if "\n## " in section else len(section)]
    section = section[: section.find("\n### ", 1) if "\n### " in section[1:] else len(section)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def _test_database_url() -> str:
    """DATABASE_URL with pytest-django's test database in place of the configured one."""
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        pytest.fail("The archive dump test needs DATABASE_URL to run manage.py.", pytrace=False)
    name = connection.settings_dict["NAME"]
    return urlunsplit(urlsplit(configured)._replace(path="/" + quote(name)))


def _as_here(block: str, *, archive_dir: Path, scratch: str) -> str:
    """The documented block with this test's server, database, directory and month in place
    of the example's."""
    database = connection.settings_dict
    replacements = [
        (r"\bdb\.internal\b", database["HOST"] or "127.0.0.1"),
        (r"-U commissary\b", f"-U {database['USER'] or 'postgres'}"),
        (r"\bcommissary_archive\b", scratch),
        (r"-d commissary\b", f"-d {database['NAME']}"),
        (r"/archive/", f"{archive_dir}/"),
        (r"\b2026-01\b", f"{JANUARY:%Y-%m}"),
        (r"(?<!\d)202601(?!\d)", f"{JANUARY:%Y%m}"),
        (r"^manage\.py\b", f"{sys.executable} manage.py"),
    ]
    for pattern, replacement in replacements:
        block = re.sub(pattern, replacement.replace("\\", "\\\\"), block, flags=re.M)
    return block


def _run(script: str, bin_dir: Path) -> str:
    database = connection.settings_dict
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGPORT": str(database["PORT"] or 5432),
        "DATABASE_URL": _test_database_url(),
    }
    if database["PASSWORD"]:
        environment["PGPASSWORD"] = database["PASSWORD"]
    finished = subprocess.run(  # noqa: S603 - bash runs the documented steps
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607 - the system's bash
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, f"{script}\n{finished.stdout}\n{finished.stderr}"
    return finished.stdout


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_the_documented_dump_drop_and_restore_keep_the_archived_month(tmp_path):
    bin_dir = clusters.require_client_binaries(*CLIENT_PROGRAMS)
    archive_block, restore_block = documented_blocks()
    scratch = f"{connection.settings_dict['NAME']}_archive"
    partitions.ensure_partitions(now=_at(JANUARY, 15), ahead=1)
    admitted = {"now": _at(dt.date(2017, 12, 1), 1)}
    inmate, other = InmateFactory(**admitted), InmateFactory(**admitted)
    deposit(inmate, 10_000, now=_at(JANUARY, 10))
    post_purchase(inmate.pk, 3_000, now=_at(JANUARY, 20))
    deposit(other, 4_000, now=_at(JANUARY, 11))
    deposit(inmate, 5_000, now=_at(FEBRUARY, 10))
    january = Entry.objects.filter(created_at__lt=partitions.month_start(FEBRUARY))
    journal_totals = dict(
        january.values("account_id")
        .annotate(total=Sum("amount_fen"))
        .values_list("account_id", "total")
    )
    entries = january.count()
    assert batch.reconcile_ledger().status == ScheduledRun.Status.SUCCEEDED
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    try:
        _run(_as_here(archive_block, archive_dir=archive_dir, scratch=scratch), bin_dir)

        # Detached, its totals kept, dumped, and dropped.
        archived = ArchivedJournalMonth.objects.get()
        assert (archived.month, archived.table_name, archived.entry_count) == (
            JANUARY,
            "ledger_entry_p201801",
            entries,
        )
        kept = dict(
            ArchivedAccountTotal.objects.filter(archived_month=archived).values_list(
                "account_id", "amount_fen"
            )
        )
        assert kept == journal_totals
        assert (archive_dir / "ledger_entry_p201801.dump").stat().st_size > 0
        assert not _table_exists("ledger_entry_p201801")
        # The journal reconciles without the table, screened and exact, and a new run is clean.
        assert run_checks() == []
        assert run_checks(exact=True) == []
        assert batch.reconcile_ledger().status == ScheduledRun.Status.SUCCEEDED

        # Restored into a throwaway database, the dump holds the month's entries as they were.
        _run(_as_here(restore_block, archive_dir=archive_dir, scratch=scratch), bin_dir)
        restored = _query(
            scratch,
            "SELECT account_id, COUNT(*), SUM(amount_fen) FROM ledger_entry_p201801 "
            "GROUP BY account_id",
        )
        assert {account: total for account, _count, total in restored} == kept
        assert sum(count for _account, count, _total in restored) == entries
        assert sum(total for _account, _count, total in restored) == 0
    finally:
        _drop_database(scratch)
        with connection.cursor() as cursor:
            # February's partition goes too, so that the next test finds the months a fresh
            # database has.
            cursor.execute("DROP TABLE IF EXISTS ledger_entry_p201801, ledger_entry_p201802")


def _query(database_name: str, sql: str) -> list[tuple]:
    import psycopg

    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"] or "127.0.0.1",
        port=database["PORT"] or 5432,
        user=database["USER"] or "postgres",
        password=database["PASSWORD"] or None,
        dbname=database_name,
        autocommit=True,
    ) as scratch:
        return scratch.execute(sql).fetchall()


def _drop_database(database_name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database_name}"')  # noqa: S608 - the test's own name
