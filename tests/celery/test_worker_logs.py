"""A real Celery worker's output under each LOG_FORMAT (commissary.celery): under ``json`` every
line it writes, from start-up to a warm shutdown, is one JSON object (no text banner; Celery's
shutdown notice as a JSON line); under ``text`` a person at a terminal sees Celery's banner and
readable lines, as before."""

import json
import re

import pytest

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
