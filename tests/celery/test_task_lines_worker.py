"""Celery's lines about a task, on a real worker on Redis under ``LOG_FORMAT=json``
(commissary.celery):

- the lines that name their task only in their text, or not at all, carry the ids the task's
  message was sent with (request id, user, facility), as its "received" line does: a task
  discarded as expired, a hard time limit, a pool process lost under a running task, a message
  for a task the worker does not know;
- the worker keeps nothing about a message once its task is done.

The tasks are the tests' own (tests/celery/probe_app.py), sent by name. Production runs the
prefork pool (a task runs in a child process), which time limits and a lost child need; the
other tests here run the solo pool."""

import datetime as dt
import json
import os
import re
import signal
import socket
import uuid

import pytest
from django_guid import clear_guid, set_guid

from commissary.celery import app
from commissary.logs import bind, clear_context

pytestmark = pytest.mark.django_db(transaction=True)

PROBE_APP = "tests.celery.probe_app"
USER_ID, FACILITY_ID = 5, 6
# What the tests give the probe task as its strings: neither may reach the log.
SECRET_CODE = "code-7c1e9d0b4a"
SECRET_PIN = "pin-52e8f1a6d3"


def _json_lines(text: str) -> list[dict]:
    """The worker's complete lines so far, each parsed (each must be a JSON object)."""
    complete = text[: text.rfind("\n") + 1]
    lines = [json.loads(line) for line in complete.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def _ids(line: dict) -> tuple:
    return line.get("request_id"), line.get("user_id"), line.get("facility_id")


def _send_with_ids(broker, name: str, **options) -> tuple[str, str]:
    """Sends the task ``name`` while a request id, a user and a facility are bound (as during
    a staff member's request); returns the request id and the task id."""
    request_id = uuid.uuid4().hex
    set_guid(request_id)  # as django-guid's middleware does
    bind(user_id=USER_ID, facility_id=FACILITY_ID)
    try:
        with app.connection_for_write(
            broker.url, transport_options={"visibility_timeout": broker.visibility_timeout_seconds}
        ) as broker_connection:
            task_id = app.send_task(
                name, queue=broker.queue, connection=broker_connection, **options
            ).id
    finally:
        clear_guid()
        clear_context()
    return request_id, task_id


def _lose_the_process_under(task: str, broker, start_worker, wait_for, tmp_path):
    """A prefork worker, ``task`` sent with ids and started (it writes its process's pid to a
    marker file), and that pool process killed: (the worker, the request id, the task id)."""
    worker = start_worker(app_module=PROBE_APP, pool="prefork", LOG_FORMAT="json")
    marker = tmp_path / "marker"
    request_id, task_id = _send_with_ids(broker, task, args=[str(marker), 60])
    wait_for(lambda: marker.exists() and marker.read_text(), what="the task to start")
    os.kill(int(marker.read_text()), signal.SIGKILL)
    return worker, request_id, task_id


def _line(worker, wait_for, pattern: str, what: str) -> dict:
    found = re.compile(pattern)
    return wait_for(
        lambda: next(
            (line for line in _json_lines(worker.log()) if found.search(line["message"])), None
        ),
        what=what,
    )


def _assert_every_line_naming_the_task_carries(worker, task_id: str, ids: tuple) -> list[str]:
    naming = [line for line in _json_lines(worker.log()) if task_id in line["message"]]
    assert naming
    for line in naming:
        assert _ids(line) == ids, line
    return [line["message"] for line in naming]


def _probe_take(then: str) -> dict:
    return {
        "args": [SECRET_CODE],
        "kwargs": {"pin": SECRET_PIN, "facility_id": FACILITY_ID, "then": then},
    }


def _held_request_count(broker, worker) -> int:
    destination = f"{worker.name}@{socket.gethostname()}"
    with app.connection_for_write(broker.url) as broker_connection:
        (reply,) = app.control.broadcast(
            "held_request_count",
            reply=True,
            destination=[destination],
            connection=broker_connection,
            timeout=5,
        )
    return reply[destination]["held"]


def test_the_line_discarding_an_expired_task_carries_the_ids_it_was_sent_with(
    broker, start_worker, wait_for
):
    worker = start_worker(app_module=PROBE_APP, LOG_FORMAT="json")

    request_id, task_id = _send_with_ids(
        broker,
        "probe.take",
        expires=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        **_probe_take("succeed"),
    )

    discarded = _line(
        worker,
        wait_for,
        rf"^Discarding revoked task: probe\.take\[{task_id}\]$",
        "the worker to discard the expired task",
    )
    assert _ids(discarded) == (request_id, USER_ID, FACILITY_ID)
    _assert_every_line_naming_the_task_carries(worker, task_id, (request_id, USER_ID, FACILITY_ID))


def test_the_lines_of_a_hard_time_limit_carry_the_ids_the_task_was_sent_with(
    broker, start_worker, wait_for, tmp_path
):
    worker = start_worker(app_module=PROBE_APP, pool="prefork", LOG_FORMAT="json")

    request_id, task_id = _send_with_ids(
        broker, "probe.sleep_once", args=[str(tmp_path / "marker"), 60], time_limit=1
    )

    exceeded = _line(
        worker,
        wait_for,
        rf"^Hard time limit \(1s\) exceeded for probe\.sleep_once\[{task_id}\]$",
        "the hard time limit",
    )
    ids = (request_id, USER_ID, FACILITY_ID)
    assert _ids(exceeded) == ids
    assert exceeded["level"] == "ERROR"
    # The pool's handler then says how the task ended, naming no task in its text.
    handler = _line(
        worker, wait_for, r"^Task handler raised error: ", "the failure after the time limit"
    )
    assert _ids(handler) == ids
    _assert_every_line_naming_the_task_carries(worker, task_id, ids)


def test_the_line_of_a_pool_process_lost_under_a_task_carries_the_ids_it_was_sent_with(
    broker, start_worker, wait_for, tmp_path
):
    worker, request_id, task_id = _lose_the_process_under(
        "probe.sleep_once", broker, start_worker, wait_for, tmp_path
    )

    lost = _line(
        worker,
        wait_for,
        r"^Task handler raised error: WorkerLostError\('Worker exited prematurely: signal 9",
        "the worker to notice its lost process",
    )
    ids = (request_id, USER_ID, FACILITY_ID)
    assert _ids(lost) == ids
    assert lost["level"] == "ERROR"
    # The message goes back to the queue (reject_on_worker_lost) and runs again, with its ids.
    _line(
        worker,
        wait_for,
        rf"^Task probe\.sleep_once\[{task_id}\] succeeded in ",
        "the task to run again",
    )
    _assert_every_line_naming_the_task_carries(worker, task_id, ids)
    # Nothing is kept about a message once its task is done.
    assert _held_request_count(broker, worker) == 0


def test_a_task_retried_after_its_pool_process_was_lost_keeps_the_ids_it_was_sent_with(
    broker, start_worker, wait_for, tmp_path
):
    """With ``retry_on_worker_lost`` the worker's main process sends the task again as a new
    message: its retry line and the new message carry the ids."""
    worker, request_id, task_id = _lose_the_process_under(
        "probe.sleep_once_retried", broker, start_worker, wait_for, tmp_path
    )

    retry = _line(
        worker,
        wait_for,
        rf"^Task probe\.sleep_once_retried\[{task_id}\] retry: Retry in 600s: WorkerLostError",
        "the retry after the lost process",
    )
    ids = (request_id, USER_ID, FACILITY_ID)
    assert _ids(retry) == ids
    received = f"Task probe.sleep_once_retried[{task_id}] received"

    def received_twice() -> list[dict] | None:
        lines = [line for line in _json_lines(worker.log()) if line["message"] == received]
        return lines if len(lines) >= 2 else None

    _first, again = wait_for(received_twice, what="the retry's message to arrive")[:2]
    assert _ids(again) == ids
    _assert_every_line_naming_the_task_carries(worker, task_id, ids)


def test_the_line_refusing_a_task_the_worker_does_not_know_carries_the_ids_it_was_sent_with(
    broker, start_worker, wait_for
):
    worker = start_worker(LOG_FORMAT="json")

    request_id, _task_id = _send_with_ids(broker, "probe.unknown", args=[1])

    unknown = _line(
        worker,
        wait_for,
        r"^Received unregistered task of type 'probe\.unknown'",
        "the worker to refuse the unknown task",
    )
    assert _ids(unknown) == (request_id, USER_ID, FACILITY_ID)


def test_no_line_shows_a_tasks_strings_and_every_line_names_it_with_its_ids(
    broker, start_worker, wait_for
):
    worker = start_worker(app_module=PROBE_APP, pool="prefork", LOG_FORMAT="json")

    sent = {
        then: _send_with_ids(broker, "probe.take", **_probe_take(then))
        for then in ("succeed", "fail", "retry")
    }
    # A message for a task this worker does not know, with a secret argument.
    _, unknown_task_id = _send_with_ids(broker, "probe.unknown", args=[SECRET_CODE])

    succeeded = _line(
        worker,
        wait_for,
        rf"^Task probe\.take\[{sent['succeed'][1]}\] succeeded in ",
        "the task to succeed",
    )
    failed = _line(
        worker,
        wait_for,
        rf"^Task probe\.take\[{sent['fail'][1]}\] raised unexpected: ValueError\('refused'\)$",
        "the task to fail",
    )
    _line(
        worker,
        wait_for,
        rf"^Task probe\.take\[{sent['retry'][1]}\] retry: ",
        "the task to retry",
    )
    _line(
        worker,
        wait_for,
        rf"^Task probe\.take\[{sent['retry'][1]}\] succeeded in ",
        "the retried task to succeed",
    )
    unknown = _line(
        worker,
        wait_for,
        r"^Received unregistered task of type 'probe\.unknown'",
        "the worker to refuse the unknown task",
    )

    log = worker.log()
    assert SECRET_CODE not in log and SECRET_PIN not in log
    # The integers stay, the strings' places are marked.
    assert succeeded["message"].endswith(": {'code': <masked>, 'pin': <masked>, 'facility_id': 6}")
    assert failed["data"]["args"] == "(<masked>,)"
    assert failed["data"]["kwargs"] == "{'pin': <masked>, 'facility_id': 6, 'then': <masked>}"
    for request_id, task_id in sent.values():
        messages = _assert_every_line_naming_the_task_carries(
            worker, task_id, (request_id, USER_ID, FACILITY_ID)
        )
        assert f"Task probe.take[{task_id}] received" in messages
    assert f"'id': '{unknown_task_id}'" in unknown["message"]  # its headers, but the arguments

    # Nothing is kept about a message once its task is done.
    assert _held_request_count(broker, worker) == 0
