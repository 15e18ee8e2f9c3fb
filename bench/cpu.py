"""CPU time by kind of process while a measurement runs (Linux: read from /proc).

Where an operation's CPU goes on a machine that runs the whole stack: the web server's
workers, the benchmark database's PostgreSQL backends, PostgreSQL's background processes,
Redis, PgBouncer, and the load generator's client processes. A thread reads every process's user and
system time ten times a second while the measurement runs; a process that ends (the clients do,
at the end of a measurement) counts what it had used at its last reading, so up to a tenth of a
second of its time can be missing. Other work on the machine is left out: it is in no class.
A process that started while the sampling ran counts all its CPU, its start-up included: start
the sampling once the clients are connected and warm (``bench/kiosk.py`` does, at the barrier
that releases them).
"""

import os
import threading
from collections import Counter
from pathlib import Path

CLASSES = (
    "web server",
    "PostgreSQL backends",
    "PostgreSQL background",
    "Redis",
    "pooler",
    "load generator",
)
_TICKS = os.sysconf("SC_CLK_TCK")


def classify(command_line: str, database: str) -> str | None:
    """The class of a process by its command line (arguments joined by spaces), or None.
    PostgreSQL names a backend ``postgres: [cluster: ]user database address(port) state`` and
    a background process ``postgres: [cluster: ]walwriter`` and the like."""
    if "gunicorn" in command_line:
        return "web server"
    if command_line.startswith("postgres:"):
        words = command_line.split()
        if "(" not in command_line:
            return "PostgreSQL background"
        return "PostgreSQL backends" if database in words else None
    if "redis-server" in command_line:
        return "Redis"
    if "pgbouncer" in command_line:
        return "pooler"
    if "multiprocessing.spawn" in command_line or "spawn_main" in command_line:
        return "load generator"
    return None


def _read(pid: str) -> tuple[str, float, float, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:  # it ended between the listing and the reading
        return None
    # The fields after the command name (which may hold spaces) start with the 3rd: utime is
    # the 14th, stime the 15th, starttime (which tells a reused pid) the 22nd.
    fields = stat.rsplit(")", 1)[1].split()
    user, system, started = int(fields[11]) / _TICKS, int(fields[12]) / _TICKS, int(fields[19])
    return command_line.decode(errors="replace"), user, system, started


def _all() -> dict[int, tuple[str, float, float, int]]:
    found = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit() and (read := _read(pid)) is not None:
            found[int(pid)] = read
    return found


class ProcessCPU:
    """``cpu.start()`` … ``cpu.stop()``, then ``cpu.seconds``: CPU seconds by class
    (``"<class> user"``, ``"<class> system"``) used in between, added up over every start and
    stop of the same object."""

    def __init__(self, database: str, interval: float = 0.1):
        self.database = database
        self.interval = interval
        self.seconds: Counter[str] = Counter()

    def start(self) -> None:
        self._stop = threading.Event()
        self._start = _all()
        self._last = dict(self._start)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _read_all(self) -> None:
        for pid, now in _all().items():
            last = self._last.get(pid)
            if not now[0].strip() and last is not None and last[3] == now[3]:
                # An ended process not yet waited for: no command line any more, its final times
                now = (last[0], *now[1:])
            self._last[pid] = now

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._read_all()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._read_all()
        for pid, (command_line, user, system, started) in self._last.items():
            # A backend's command line changes with its state: the latest one classifies it.
            kind = classify(command_line, self.database)
            if kind is None:
                continue
            before = self._start.get(pid)
            if before is not None and before[3] == started:  # the same process: its use since
                user, system = user - before[1], system - before[2]
            self.seconds[f"{kind} user"] += user
            self.seconds[f"{kind} system"] += system


def per_operation_lines(seconds: Counter, operations: int) -> list[str]:
    """One line per class that used any CPU: milliseconds an operation, user + system."""
    lines = []
    total = 0.0
    for kind in CLASSES:
        user, system = seconds[f"{kind} user"], seconds[f"{kind} system"]
        if user + system < 1e-9:
            continue
        total += user + system
        lines.append(
            f"    {kind:<24}{1000 * (user + system) / operations:>7.3f} ms"
            f"  (user {1000 * user / operations:.3f}, system {1000 * system / operations:.3f})"
        )
    lines.append(f"    {'all of the above':<24}{1000 * total / operations:>7.3f} ms")
    return lines
