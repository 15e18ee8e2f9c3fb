"""A real Celery worker's output under each LOG_FORMAT (commissary.celery): under ``json`` every
line it writes, from start-up to a warm shutdown, is one JSON object (no text banner; Celery's
shutdown notice as a JSON line; the prefork pool's line about a lost process); under ``text`` a
person at a terminal sees Celery's banner and readable lines, as before."""

import json
import os
import re
import signal

import pytest

from commissary.celery import app
from ledger import tasks as ledger_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def test_under_json_every_line_from_start_to_shutdown_is_json(broker, start_worker, wait_for):
    worker = start_worker(LOG_FORMAT="json")
    task_id = broker.send(ledger_tasks.expire_stale_deposits)
    wait_for(lambda: f"[{task_id}] succeeded in " in worker.log(), what="the expiry to finish")

    worker.stop()

    assert worker.process.returncode == 0
    lines = [json.loads(line) for line in worker.log().splitlines()]
    assert lines and all(isinstance(line, dict) for line in lines)
    fields = {"time", "level", "logger", "message", "request_id"}
    assert all(fields <= line.keys() for line in lines)
    messages = [line["message"] for line in lines]
    # In place of the banner, one line with the worker's name, queues and concurrency.
    assert any(
        re.fullmatch(
            rf"worker {re.escape(worker.name)}@\S+ starting: queues {broker.queue}, concurrency 1",
            message,
        )
        for message in messages
    )
    assert f"Task ledger.tasks.expire_stale_deposits[{task_id}] received" in messages
    assert any(message.endswith(" ready.") for message in messages)
    assert "worker: Warm shutdown (MainProcess)" in messages


def test_under_text_the_worker_writes_its_banner_and_readable_lines(broker, start_worker, wait_for):
    worker = start_worker()  # the fixture's default: LOG_FORMAT=text
    task_id = broker.send(ledger_tasks.expire_stale_deposits)
    wait_for(lambda: f"[{task_id}] succeeded in " in worker.log(), what="the expiry to finish")

    worker.stop()

    log = worker.log()
    assert "[queues]" in log  # Celery's banner
    assert re.search(
        rf"\S+ \S+ INFO celery\.worker\.strategy \[None\] "
        rf"Task ledger\.tasks\.expire_stale_deposits\[{task_id}\] received",
        log,
    )
    assert "worker: Warm shutdown (MainProcess)" in log
    assert not any(line.startswith("{") for line in log.splitlines())


def test_under_json_the_pools_line_about_a_lost_process_is_json(
    broker, start_worker, wait_for, tmp_path
):
    """The prefork pool (production's) says so when one of its processes exits unexpectedly,
    through a logger of its own (billiard's ``multiprocessing``)."""
    worker = start_worker(app_module="tests.celery.probe_app", pool="prefork", LOG_FORMAT="json")
    marker = tmp_path / "marker"
    with app.connection_for_write(broker.url) as broker_connection:
        app.send_task(
            "probe.sleep_once",
            args=[str(marker), 60],
            queue=broker.queue,
            connection=broker_connection,
        )
    wait_for(lambda: marker.exists() and marker.read_text(), what="the task to start")
    pid = int(marker.read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: "Task handler raised error: WorkerLostError" in worker.log(),
        what="the worker to notice its lost process",
    )

    log = worker.log()
    lines = [json.loads(line) for line in log[: log.rfind("\n") + 1].splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    lost = [line for line in lines if line["logger"] == "multiprocessing"]
    assert [(line["level"], line["message"]) for line in lost] == [
        ("ERROR", f"Process 'ForkPoolWorker-1' pid:{pid} exited with 'signal 9 (SIGKILL)'")
    ]
