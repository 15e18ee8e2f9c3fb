"""Real Celery workers for the tests of the scheduled money work.

Each test starts its own ``celery worker --pool solo`` processes with Redis as the broker,
consuming a queue no other worker knows and pointed at pytest-django's test database, so a
task runs as in production: sent through the broker, run by a separate process on its own
database connection, acknowledged late. Because the worker is another process, the tests that
use it commit their data (``django_db(transaction=True)``).

The worker is configured the way production is, through the environment: DATABASE_URL,
REDIS_URL, CELERY_QUEUE, CELERY_VISIBILITY_TIMEOUT (a few seconds here, so that a message a
killed worker took is delivered again within the test) and LEDGER_BATCH_PAUSE_SECONDS. The test
process read its own settings at import, so it does not rely on them: it sends through its own
connection to the same broker and queue.

Without Redis the tests skip on a workstation and fail under CI (``CI=true``), so a CI machine
that lost its broker cannot pass quietly.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.db import connection

from commissary.celery import app

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"  # what the test script uses
# Short, so a message taken by a killed worker is delivered again within the test. Production
# keeps kombu's hour; nothing else about the broker differs.
VISIBILITY_TIMEOUT_SECONDS = 5
WORKER_READY_TIMEOUT_SECONDS = 30
WORKER_STOP_TIMEOUT_SECONDS = 10

T = TypeVar("T")


def _is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        reason = f"Redis is not reachable at {url} ({error}); the Celery worker tests need it."
        if _is_ci():
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return url


class Broker:
    """The test's view of Redis: it sends tasks to the test's own queue, looks at what a worker
    has taken and not yet acknowledged, and removes every trace of the queue afterwards."""

    # kombu's Redis transport keeps every channel's unacknowledged messages in these two keys.
    UNACKED_KEY = "unacked"
    UNACKED_INDEX_KEY = "unacked_index"

    visibility_timeout_seconds = VISIBILITY_TIMEOUT_SECONDS

    def __init__(self, url: str, queue: str):
        self.url = url
        self.queue = queue
        self.redis = redis.Redis.from_url(url)

    @property
    def all_queues(self) -> list[str]:
        """The test's queue and its work queues (money, mail, reports), named after it as the
        worker names them from CELERY_QUEUE (``settings.WORK_QUEUES``)."""
        default = settings.CELERY_TASK_DEFAULT_QUEUE
        return [
            self.queue,
            *(self.queue + name.removeprefix(default) for name in settings.WORK_QUEUES.values()),
        ]

    def send(self, task, *, task_id: str | None = None, **kwargs) -> str:
        """Queue ``task(**kwargs)`` for the test's workers; returns the task id."""
        with app.connection_for_write(
            self.url, transport_options={"visibility_timeout": self.visibility_timeout_seconds}
        ) as broker_connection:
            result = task.apply_async(
                kwargs=kwargs, task_id=task_id, queue=self.queue, connection=broker_connection
            )
        return result.id

    def _unacked(self):
        for tag, raw in self.redis.hscan_iter(self.UNACKED_KEY):
            message, _exchange, routing_key = json.loads(raw)
            if routing_key == self.queue:
                yield tag, message

    def taken_at(self, task_id: str) -> float | None:
        """When a worker took the task's message without acknowledging it yet (a Unix time),
        or None when no worker holds it."""
        for tag, message in self._unacked():
            if message["headers"]["id"] == task_id:
                return self.redis.zscore(self.UNACKED_INDEX_KEY, tag)
        return None

    def purge(self) -> None:
        for tag, _message in list(self._unacked()):
            self.redis.zrem(self.UNACKED_INDEX_KEY, tag)
            self.redis.hdel(self.UNACKED_KEY, tag)
        # The queue itself, its bindings, and the workers' remote-control bindings: every one
        # of them carries the queue's name (the workers' names are made from it).
        for key in list(self.redis.scan_iter(match=f"*{self.queue}*")):
            self.redis.delete(key)
        for key in list(self.redis.scan_iter(match="_kombu.binding.*")):
            if self.redis.type(key) == b"set":
                stale = [
                    member for member in self.redis.smembers(key) if self.queue.encode() in member
                ]
                if stale:
                    self.redis.srem(key, *stale)
        self.redis.close()


@pytest.fixture
def broker(redis_url) -> Broker:
    """A queue of the test's own on Redis: stray workers never take its messages."""
    broker = Broker(redis_url, queue=f"commissary-test-{uuid.uuid4().hex}")
    yield broker
    broker.purge()


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        ready = re.compile(rf"{re.escape(self.name)}@\S+ ready\.")
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
        while not ready.search(self.log()):
            if self.process.poll() is not None:
                pytest.fail(
                    f"worker {self.name} exited with {self.process.returncode} before it was "
                    f"ready:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} was not ready in time:\n{self.log()}")
            time.sleep(0.1)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group has already gone
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: no warm shutdown, no acknowledgement."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """SIGTERM (a warm shutdown: the running task finishes first), then SIGKILL."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WORKER_STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()


def _test_database_url() -> str:
    """DATABASE_URL with pytest-django's test database in place of the configured one."""
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        pytest.fail("The Celery worker tests need DATABASE_URL to start workers.", pytrace=False)
    name = connection.settings_dict["NAME"]
    return urlunsplit(urlsplit(configured)._replace(path="/" + quote(name)))


@pytest.fixture
def start_worker(transactional_db, broker, tmp_path) -> Callable[..., Worker]:
    """``start_worker(**env)`` starts a Celery worker on the test's queue and test database
    and returns once it consumes; extra keyword arguments become its environment variables.
    ``queues`` (default: the test's queue alone) are the queues it consumes; tasks the worker
    queues itself go to their work queue (``settings.WORK_QUEUES``), which a worker consumes
    only when given ``broker.all_queues``. ``pool`` is Celery's (``solo`` by default: the task
    runs in the worker's process; ``prefork`` runs it in a child, as production does, which
    time limits and a lost child need); ``app_module`` the module Celery loads (``-A``), the
    project's by default.
    Workers still running at the end are stopped; their logs are printed (pytest shows them
    when the test failed)."""
    workers: list[Worker] = []

    def start(
        queues: list[str] | None = None,
        pool: str = "solo",
        app_module: str = "commissary",
        **extra_env: str,
    ) -> Worker:
        name = f"{broker.queue}-{len(workers) + 1}"
        env = {
            **os.environ,
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": broker.url,
            "CELERY_QUEUE": broker.queue,
            "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS),
            "LEDGER_BATCH_PAUSE_SECONDS": "0",
            # Closed after every task, so no idle session outlives the test's database.
            "CONN_MAX_AGE": "0",
            "EMAIL_URL": "consolemail://",
            # Readable lines, which the tests search; test_request_id_worker asks for JSON.
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
        log_path = tmp_path / f"{name}.log"
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    app_module,
                    "worker",
                    "--pool",
                    pool,
                    "--concurrency",
                    "1",
                    "-Q",
                    ",".join(queues or [broker.queue]),
                    "--hostname",
                    f"{name}@%h",
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so killpg reaches all of it
            )
        worker = Worker(name=name, process=process, log_path=log_path)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for worker in workers:
        print(f"----- worker {worker.name} (exit {worker.process.returncode}) -----")
        print(worker.log())


def _wait_for(condition: Callable[[], T], *, what: str, timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}.", pytrace=False)
        time.sleep(0.05)


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``wait_for(condition, what=..., timeout=60)`` polls ``condition()`` until it returns
    something true, and returns it; the test fails, naming ``what``, if it never does."""
    return _wait_for
