"""A request's id reaches the Celery task it queued: the web process sends it in the task's
headers (django-guid's Celery integration), and a real worker on Redis, a separate process,
writes it on its own JSON log lines for that task (commissary.logs, commissary.celery)."""

import json
import re
import uuid

import pytest

from ledger import tasks as ledger_tasks
from ledger.models import ScheduledRun
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _json_lines(text: str) -> list[dict]:
    """The worker's log lines that are JSON objects (its start-up banner is not a log line)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_a_task_queued_by_a_request_runs_under_the_requests_id_in_a_real_worker(
    client, broker, start_worker, wait_for, monkeypatch
):
    sent: list[str] = []
    # The admin's button queues with .delay(); here the message goes to this test's own queue,
    # through the same apply_async, so the publishing signals run as in production.
    monkeypatch.setattr(
        ledger_tasks.reconcile_ledger,
        "delay",
        lambda **kwargs: sent.append(broker.send(ledger_tasks.reconcile_ledger, **kwargs)),
    )
    worker = start_worker(LOG_FORMAT="json")
    client.force_login(StaffFactory(is_superuser=True))
    request_id = str(uuid.uuid4())

    response = client.post(
        "/admin/ledger/scheduledrun/reconcile-now/", headers={"X-Request-ID": request_id}
    )

    assert response.status_code == 302
    assert response["X-Request-ID"] == request_id
    (task_id,) = sent
    finished = re.compile(rf"ledger\.tasks\.reconcile_ledger\[{task_id}\] succeeded in ")
    line = wait_for(
        lambda: next(
            (line for line in _json_lines(worker.log()) if finished.search(line["message"])),
            None,
        ),
        what="the worker to finish the reconciliation",
    )
    assert line["request_id"] == request_id
    assert line["logger"] == "celery.app.trace"
    assert ScheduledRun.objects.filter(kind=ScheduledRun.Kind.RECONCILIATION).count() == 1
    # Every line the worker logged is one JSON object with the fields an operator filters on.
    logged = _json_lines(worker.log())
    assert logged and all(
        {"time", "level", "logger", "message", "request_id"} <= line.keys() for line in logged
    )


def test_a_task_queued_outside_a_request_runs_under_an_id_of_its_own(
    broker, start_worker, wait_for
):
    worker = start_worker(LOG_FORMAT="json")

    task_id = broker.send(ledger_tasks.expire_stale_deposits)

    finished = re.compile(rf"ledger\.tasks\.expire_stale_deposits\[{task_id}\] succeeded in ")
    line = wait_for(
        lambda: next(
            (line for line in _json_lines(worker.log()) if finished.search(line["message"])),
            None,
        ),
        what="the worker to finish the expiry",
    )
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
