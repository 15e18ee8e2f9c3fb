"""Throwaway PostgreSQL clusters from the installed binaries, for tests (and benchmarks) that
need a cluster of their own: a primary with a streaming standby, WAL archiving, a base backup,
a restore to a point in time.

The suite's own PostgreSQL cannot serve here: its ``pg_hba.conf`` has no replication line, and
a test must be free to stop, pause and restore a cluster. Each cluster is made by ``initdb`` in
a temporary directory, listens on a free port of 127.0.0.1 with trust authentication, and is
stopped and removed at the end (``pair`` and ``new_cluster`` are context managers). When this
process runs as root, the binaries run as the ``postgres`` user (PostgreSQL refuses root), as
``scripts/test`` does.

Where the binaries are missing, ``require_binaries()`` skips the test, except under CI (``CI``
set), where it fails: CI installs PostgreSQL, so a missing binary there is a broken job.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

USER = "postgres"


SERVER_PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup")


def programs(*names: str) -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with every one of ``names``, else the one
    directory on PATH that holds them all, else None."""
    for candidate in sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in path.parent.name.split(".") if part.isdigit()],
        reverse=True,
    ):
        if all(os.access(candidate / name, os.X_OK) for name in names):
            return candidate
    found = [shutil.which(name) for name in names]
    if all(found) and len({Path(path).resolve().parent for path in found}) == 1:
        return Path(found[0]).resolve().parent
    return None


def binaries() -> Path | None:
    """The server binaries' directory (initdb, pg_ctl, pg_basebackup), or None."""
    return programs(*SERVER_PROGRAMS)


def client_binaries(*names: str) -> Path | None:
    """The client programs' directory (pg_dump, pg_restore, psql, ...), or None."""
    return programs(*names)


def is_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false")


def _required(found: Path | None, missing: str, package: str) -> Path:
    """``found``; without it a skip, or a failure under CI."""
    import pytest  # here, so that benchmarks can use this module without pytest

    if found is None:
        if is_ci():
            pytest.fail(
                f"{missing} are not installed; CI must install them (apt-get install {package})"
            )
        pytest.skip(f"{missing} are not installed")
    return found


def require_binaries() -> Path:
    return _required(
        binaries(),
        f"PostgreSQL's server binaries ({', '.join(SERVER_PROGRAMS)})",
        "postgresql",
    )


def require_client_binaries(*names: str) -> Path:
    return _required(
        client_binaries(*names),
        f"PostgreSQL's client programs ({', '.join(names)})",
        "postgresql-client",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_as() -> list[str]:
    """The prefix that runs a binary as the postgres user when we are root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser"):
        return ["runuser", "-u", USER, "--"]
    return ["su", "-s", "/bin/sh", USER, "-c", '"$0" "$@"', "--"]


def _owned_dir(path: Path) -> Path:
    """A directory the server's user may write."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, USER, USER)
    return path


@dataclass
class Cluster:
    """One PostgreSQL cluster: its data directory, its port and how to run its binaries."""

    bin: Path
    data: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.data.parent / f"{self.data.name}.log"

    def command(self, program: str, *arguments: str, check: bool = True, timeout: float = 120):
        finished = subprocess.run(  # noqa: S603 - the installed PostgreSQL binaries
            [*_run_as(), str(self.bin / program), *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.data.parent,
            stdin=subprocess.DEVNULL,
        )
        if check and finished.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{program} {' '.join(arguments)} failed:\n{finished.stdout}\n{finished.stderr}"
                f"\n{log[-3000:]}"
            )
        return finished

    def start(self) -> None:
        options = " ".join(
            f"-c {name}={value}"
            for name, value in {
                "listen_addresses": "127.0.0.1",
                "port": str(self.port),
                "unix_socket_directories": str(self.data.parent),
                "max_connections": "60",
                **self.settings,
            }.items()
        )
        self.command(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self.command("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{USER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **options) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname=database, autocommit=True,
            connect_timeout=5, **options,
        )  # fmt: skip

    def query(self, sql: str, params=None, database: str = "postgres"):
        """The first row of ``sql``'s answer (or None)."""
        with self.connect(database) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchone() if cursor.description else None

    def wait_until(self, sql: str, params=None, *, database="postgres", timeout: float = 60):
        """Until ``sql`` answers a true first column (a standby catching up, a recovery)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(psycopg.OperationalError):
                row = self.query(sql, params, database)
                if row and row[0]:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sql!r} never became true on port {self.port}")
            time.sleep(0.2)


def initdb(bin_dir: Path, root: Path, name: str, **settings: str) -> Cluster:
    """A new, stopped cluster under ``root``."""
    cluster = Cluster(bin_dir, _owned_dir(root) / name, free_port(), settings)
    cluster.command(
        "initdb", "-D", str(cluster.data), "-U", USER, "--auth=trust", "--encoding=UTF8",
        "--locale=C", "--no-sync",
    )  # fmt: skip
    return cluster


def standby_of(primary: Cluster, root: Path, name: str = "standby") -> Cluster:
    """A streaming standby of a running ``primary``: a base backup with ``-R`` (which writes
    ``primary_conninfo`` and ``standby.signal``), on a port of its own, started."""
    standby = Cluster(primary.bin, root / name, free_port(), dict(primary.settings))
    standby.settings.pop("archive_mode", None)
    standby.settings.pop("archive_command", None)
    primary.command(
        "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", USER,
        "-D", str(standby.data), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
    )  # fmt: skip
    standby.start()
    return standby


def replay_caught_up(primary: Cluster, standby: Cluster, timeout: float = 60) -> None:
    """Wait until the standby has applied everything the primary has written so far."""
    (lsn,) = primary.query("SELECT pg_current_wal_lsn()::text")
    standby.wait_until(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn], timeout=timeout
    )  # fmt: skip


@contextlib.contextmanager
def scratch_dir(prefix: str = "commissary-clusters-"):
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def new_cluster(bin_dir: Path, root: Path, name: str = "primary", **settings: str):
    """A started cluster, stopped at the end (its files go with ``root``)."""
    cluster = initdb(bin_dir, root, name, **settings)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")


@contextlib.contextmanager
def pair(bin_dir: Path, root: Path, **settings: str):
    """A started primary and its streaming standby, both stopped at the end."""
    with new_cluster(bin_dir, root, "primary", **settings) as primary:
        standby = standby_of(primary, root)
        try:
            yield primary, standby
        finally:
            standby.stop("immediate")


def archiving_settings(archive: Path) -> dict[str, str]:
    """What turns on WAL archiving into ``archive`` (a directory the server may write): each
    finished WAL segment is copied there, never over one already archived, under a temporary
    name first, so a segment appears in the archive only whole (a half-copied one stops a
    restore: "has wrong size")."""
    _owned_dir(archive)
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": (
            f"'test ! -f {archive}/%f && cp %p {archive}/%f.partial"
            f" && mv {archive}/%f.partial {archive}/%f'"
        ),
        "archive_timeout": "0",
    }


def base_backup(primary: Cluster, target: Path) -> Path:
    """``pg_basebackup`` of a running cluster into ``target`` (plain files, with the WAL it
    needs to be consistent)."""
    primary.command(
        "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", USER,
        "-D", str(target), "-X", "stream", "--checkpoint=fast", "--no-sync",
    )  # fmt: skip
    return target


def archive_current_wal(primary: Cluster, archive: Path, timeout: float = 60) -> None:
    """Close the current WAL segment and wait until it is in the archive, so everything
    written so far can be restored from there."""
    (segment,) = primary.query("SELECT pg_walfile_name(pg_switch_wal())")
    deadline = time.monotonic() + timeout
    while not (archive / segment).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{segment} never reached the archive")
        time.sleep(0.2)


def restore(
    bin_dir: Path,
    backup: Path,
    archive: Path,
    root: Path,
    name: str = "restored",
    **recovery_target: str,
) -> Cluster:
    """A new cluster from a base backup, replaying the archived WAL up to ``recovery_target``
    (``recovery_target_name``, ``_time`` or ``_lsn``) and then promoted; started, and waited
    for until it accepts writes."""
    data = root / name
    subprocess.run(["cp", "-a", str(backup), str(data)], check=True)  # noqa: S603, S607 - fixed arguments
    settings = {
        "restore_command": f"'cp {archive}/%f %p'",
        "recovery_target_action": "promote",
        **{name: f"'{value}'" for name, value in recovery_target.items()},
    }
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
    (data / "recovery.signal").touch()
    if os.geteuid() == 0:
        shutil.chown(data / "recovery.signal", USER, USER)
    cluster = Cluster(bin_dir, data, free_port())
    cluster.start()
    cluster.wait_until("SELECT NOT pg_is_in_recovery()", timeout=120)
    return cluster
