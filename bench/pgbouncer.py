"""A throwaway PgBouncer in front of a PostgreSQL server, for the tests and the benchmarks.

``Pooler(...)`` writes its own ``pgbouncer.ini`` and user list into a temporary directory,
starts Debian's ``pgbouncer`` on a free loopback port and stops it again (``with Pooler(...) as
pooler``). Every database name is passed on to the server (``* = host=… port=…``), clients are
trusted (``auth_type = trust``: loopback only, nothing to keep secret), and the pool mode and
the reset query are the caller's, so a test can show what transaction mode does to prepared
statements. PgBouncer refuses to run as root: as root it runs as the ``postgres`` user.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT_SECONDS = 30


class PgBouncerMissing(RuntimeError):
    """No ``pgbouncer`` program on this machine."""


def pgbouncer_program() -> str | None:
    """The path of the installed ``pgbouncer`` (Debian puts it in /usr/sbin), or None."""
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Pooler:
    """One PgBouncer process. ``port`` is where clients connect once it has started."""

    def __init__(
        self,
        *,
        server_host: str = "127.0.0.1",
        server_port: int = 5432,
        user: str = "postgres",
        password: str = "",
        pool_mode: str = "session",
        pool_size: int = 100,
        max_client_conn: int = 400,
        server_reset_query: str = "DISCARD ALL",
        ignore_startup_parameters: str = "",
    ):
        self.server_host = server_host
        self.server_port = server_port
        self.user = user
        self.password = password
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.server_reset_query = server_reset_query
        self.ignore_startup_parameters = ignore_startup_parameters
        self.port: int | None = None
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    def ini(self, directory: Path, port: int) -> str:
        # ``server_reset_query`` is sent when a client leaves a server connection in session
        # mode (transaction mode never sends it unless server_reset_query_always is set).
        return "\n".join(
            [
                "[databases]",
                f"* = host={self.server_host} port={self.server_port}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {directory / 'users.txt'}",
                f"pool_mode = {self.pool_mode}",
                f"default_pool_size = {self.pool_size}",
                f"max_client_conn = {self.max_client_conn}",
                f"server_reset_query = {self.server_reset_query}",
                f"ignore_startup_parameters = {self.ignore_startup_parameters}",
                f"logfile = {directory / 'pgbouncer.log'}",
                "",
            ]
        )

    def start(self) -> "Pooler":
        program = pgbouncer_program()
        if program is None:
            raise PgBouncerMissing("pgbouncer is not installed (apt-get install pgbouncer)")
        self.directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.port = free_port()
        # With trust, the pooler logs in to the server with the password listed here.
        users = self.directory / "users.txt"
        users.write_text(f'"{self.user}" "{self.password}"\n')
        users.chmod(0o600)
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(self.ini(self.directory, self.port))
        command = [program, "-q", str(ini)]
        if os.geteuid() == 0:
            # PgBouncer will not run as root; the postgres user owns the directory it writes.
            owner = pwd.getpwnam("postgres")
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            command = [program, "-u", "postgres", "-q", str(ini)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log()
                self.stop()
                raise RuntimeError(f"pgbouncer exited at start:\n{log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("pgbouncer did not start listening")

    def log(self) -> str:
        path = self.directory / "pgbouncer.log" if self.directory else None
        return path.read_text() if path and path.exists() else ""

    def stop(self) -> None:
        """Stop at once (SIGINT: close every client and server connection) and remove the
        directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> "Pooler":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
