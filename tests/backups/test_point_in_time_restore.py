"""The backup procedure of docs/operations.md ("Backups"), run on a throwaway cluster: WAL
archiving on, money written through the services, a base backup, more money, a named restore
point (the instant to come back to), more money; then a restore of the base backup into a new
data directory, replaying the archive up to the restore point. The restored database
reconciles clean (every exact query) and holds exactly the money of that instant: every
account's cached balance and entries, the journal's size and the deposits by status.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import clusters

REPOSITORY = Path(__file__).resolve().parents[2]
DATABASE = "commissary"


def _money(cluster, data_dir: Path, *arguments: str) -> dict:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "DATABASE_REPLICA_URL"}
        and not name.startswith(("CELERY", "DJANGO_"))
    }
    environment.update(
        DATABASE_URL=cluster.url(DATABASE),
        COMMISSARY_DATA_DIR=str(data_dir),
        PYTHONPATH=str(REPOSITORY),
        PAYMENTS_SANDBOX="true",
        LOG_LEVEL="WARNING",
    )
    command = (
        list(arguments) if arguments[0] == "manage.py" else ["tests/backups/money.py", *arguments]
    )
    finished = subprocess.run(  # noqa: S603 - our own programs, fixed arguments
        [sys.executable, *command],
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, f"{command}:\n{finished.stdout}\n{finished.stderr}"
    return json.loads(finished.stdout.strip().splitlines()[-1]) if command[0] != "manage.py" else {}


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    bin_dir = clusters.require_binaries()
    data_dir = tmp_path_factory.mktemp("drill-app")
    with clusters.scratch_dir() as root:
        archive = root / "wal-archive"
        with clusters.new_cluster(
            bin_dir, root, "primary", fsync="off", **clusters.archiving_settings(archive)
        ) as primary:
            primary.query(f"CREATE DATABASE {DATABASE}")
            _money(primary, data_dir, "manage.py", "migrate", "--noinput")
            _money(primary, data_dir, "manage.py", "seed_demo", "--inmates", "3", "--seed", "drill")
            _money(primary, data_dir, "move", "before-backup")
            at_the_backup = _money(primary, data_dir, "state")
            backup = clusters.base_backup(primary, root / "base-backup")
            _money(primary, data_dir, "move", "after-backup")
            at_the_instant = _money(primary, data_dir, "state")
            primary.query("SELECT pg_create_restore_point('drill')")
            _money(primary, data_dir, "move", "after-the-instant")
            at_the_end = _money(primary, data_dir, "state")
            clusters.archive_current_wal(primary, archive)
        restored = clusters.restore(bin_dir, backup, archive, root, recovery_target_name="drill")
        try:
            yield {
                "at_the_backup": at_the_backup,
                "at_the_instant": at_the_instant,
                "at_the_end": at_the_end,
                "restored": _money(restored, data_dir, "state"),
                "reconciliation": _money(restored, data_dir, "reconcile"),
            }
        finally:
            restored.stop("immediate")


def test_the_restore_holds_exactly_the_money_of_the_instant(drill):
    assert drill["restored"] == drill["at_the_instant"]
    # The money after the instant is not there (the drill moved some).
    assert drill["at_the_end"]["transactions"] > drill["at_the_instant"]["transactions"]
    assert drill["restored"] != drill["at_the_end"]
    # Money written after the base backup came back from the archived WAL.
    assert drill["restored"]["transactions"] > drill["at_the_backup"]["transactions"]


def test_the_restored_ledger_reconciles_clean(drill):
    assert drill["reconciliation"] == {"findings": []}
