"""bench/cpu.py: which process is which, and the CPU a process used while the sampling ran
(its use before the start left out)."""

import subprocess
import sys

from bench.cpu import ProcessCPU, classify, per_operation_lines

BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass"


def test_processes_are_told_apart_by_their_command_lines():
    assert classify("/srv/.venv/bin/python /srv/.venv/bin/gunicorn commissary.wsgi", "db") == (
        "web server"
    )
    assert classify("postgres: 15/main: postgres db 127.0.0.1(5000) idle", "db") == (
        "PostgreSQL backends"
    )
    # a backend of another database is not the benchmark's
    assert classify("postgres: 15/main: postgres other 127.0.0.1(5000) SELECT", "db") is None
    assert classify("postgres: 15/main: walwriter", "db") == "PostgreSQL background"
    assert classify("/usr/bin/redis-server 127.0.0.1:6379", "db") == "Redis"
    assert classify("/usr/sbin/pgbouncer /tmp/pgbouncer.ini", "db") == "pooler"
    command = "python -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)"
    assert classify(command, "db") == "load generator"
    assert classify("/usr/bin/vim notes", "db") is None


def test_only_the_cpu_used_while_sampling_is_counted():
    # A process named like Redis burns 0.3 s of CPU before the sampling starts, then 0.4 s more
    # while it runs; it says when each is done, so a busy machine only makes the test slower.
    code = (
        BUSY.format(seconds=0.3)
        + "\nprint('ready', flush=True)\ninput()\n"
        + BUSY.format(seconds=0.4)
        + "\nprint('done', flush=True)\ninput()"
    )
    child = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code, "redis-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline() == "ready\n"
        cpu = ProcessCPU("db", interval=0.05)
        cpu.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        cpu.stop()
        child.stdin.write("end\n")
        child.stdin.flush()
    finally:
        child.wait(timeout=60)
    used = cpu.seconds["Redis user"] + cpu.seconds["Redis system"]
    assert 0.35 < used < 0.6
    lines = per_operation_lines(cpu.seconds, operations=100)
    assert lines[0].split()[0] == "Redis"
    assert lines[-1].split()[:4] == ["all", "of", "the", "above"]
