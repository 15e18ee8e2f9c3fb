"""A request's id reaches the Celery task it queued: the web process sends it in the task's
headers (django-guid's Celery integration), and a real worker on Redis, a separate process,
writes it on its own JSON log lines for that task (commissary.logs, commissary.celery). The ids
of who and where the request was for (``user_id``, ``facility_id``) travel with it, and a task
queued afterwards outside any request carries none of them. Celery's "Task … received" line,
written before the task runs, carries the ids its message was sent with."""

import json
import re
import uuid

import pytest
from django_guid import clear_guid, set_guid

from accounts.roles import TRUST_OFFICER, assign_role
from commissary.celery import app
from commissary.logs import bind, clear_context
from ledger import tasks as ledger_tasks
from ledger.models import ScheduledRun
from tests.factories import FacilityFactory, StaffFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _json_lines(text: str) -> list[dict]:
    """The worker's lines written so far, each parsed: fails when one is not a JSON object
    (under LOG_FORMAT=json the worker writes no banner; tests/celery/test_worker_logs.py)."""
    complete = text[: text.rfind("\n") + 1]
    lines = [json.loads(line) for line in complete.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def _queue_reconciliation_through_the_admin(client, broker, monkeypatch, user) -> tuple[str, str]:
    """POSTs the admin's "reconcile now" as ``user`` with a request id of the test's; returns
    that id and the id of the task it queued (to the test's own queue)."""
    sent: list[str] = []
    # The admin's button queues with .delay(); here the message goes to this test's own queue,
    # through the same apply_async, so the publishing signals run as in production.
    monkeypatch.setattr(
        ledger_tasks.reconcile_ledger,
        "delay",
        lambda **kwargs: sent.append(broker.send(ledger_tasks.reconcile_ledger, **kwargs)),
    )
    client.force_login(user)
    request_id = str(uuid.uuid4())
    response = client.post(
        "/admin/ledger/scheduledrun/reconcile-now/", headers={"X-Request-ID": request_id}
    )
    assert response.status_code == 302
    assert response["X-Request-ID"] == request_id
    (task_id,) = sent
    return request_id, task_id


@pytest.fixture
def officers_reconciliation(client, broker, start_worker, monkeypatch):
    """A trust officer of one facility queues a reconciliation through the admin, a worker on
    every queue (so the run's helpers, queued to the money queue, run there too) taking it:
    (worker, officer, facility, request id, task id)."""
    facility = FacilityFactory()
    officer = StaffFactory(facilities=[facility])
    assign_role(officer, TRUST_OFFICER)
    worker = start_worker(queues=broker.all_queues, LOG_FORMAT="json")
    request_id, task_id = _queue_reconciliation_through_the_admin(
        client, broker, monkeypatch, officer
    )
    return worker, officer, facility, request_id, task_id


def _succeeded_line(worker, wait_for, task_name: str, task_id: str) -> dict:
    finished = re.compile(rf"{re.escape(task_name)}\[{task_id}\] succeeded in ")
    return wait_for(
        lambda: next(
            (line for line in _json_lines(worker.log()) if finished.search(line["message"])),
            None,
        ),
        what=f"the worker to finish {task_name}",
    )


def test_a_task_queued_by_a_request_runs_under_the_requests_id_in_a_real_worker(
    client, broker, start_worker, wait_for, monkeypatch
):
    worker = start_worker(LOG_FORMAT="json")

    request_id, task_id = _queue_reconciliation_through_the_admin(
        client, broker, monkeypatch, StaffFactory(is_superuser=True)
    )

    line = _succeeded_line(worker, wait_for, "ledger.tasks.reconcile_ledger", task_id)
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

    line = _succeeded_line(worker, wait_for, "ledger.tasks.expire_stale_deposits", task_id)
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])


def test_a_task_queued_by_a_staff_request_logs_the_requests_user_and_facility(
    officers_reconciliation, broker, wait_for
):
    worker, officer, facility, request_id, task_id = officers_reconciliation

    line = _succeeded_line(worker, wait_for, "ledger.tasks.reconcile_ledger", task_id)
    assert (line["request_id"], line["user_id"], line["facility_id"]) == (
        request_id,
        officer.pk,
        facility.pk,
    )
    assert "kiosk_id" not in line and "inmate_id" not in line
    # A task that task queued (a helper taking a share of the run's chunks) carries them too.
    helper_finished = re.compile(r"ledger\.tasks\.work_on_run\[[0-9a-f-]+\] succeeded in ")
    helper = wait_for(
        lambda: next(
            (
                line
                for line in _json_lines(worker.log())
                if helper_finished.search(line["message"]) and line["request_id"] == request_id
            ),
            None,
        ),
        what="a helper of the reconciliation to finish",
    )
    assert (helper["user_id"], helper["facility_id"]) == (officer.pk, facility.pk)

    # The next task on the same worker, queued outside any request, carries none of them.
    later_id = broker.send(ledger_tasks.expire_stale_deposits)
    later = _succeeded_line(worker, wait_for, "ledger.tasks.expire_stale_deposits", later_id)
    assert later["request_id"] != request_id
    assert "user_id" not in later and "facility_id" not in later


def _received_line(worker, wait_for, task_name: str, task_id: str) -> dict:
    received = f"Task {task_name}[{task_id}] received"
    return wait_for(
        lambda: next(
            (line for line in _json_lines(worker.log()) if line["message"] == received), None
        ),
        what=f"the worker to receive {task_name}",
    )


def test_the_received_line_carries_the_ids_the_task_was_sent_with(
    officers_reconciliation, broker, wait_for
):
    """Celery writes "Task … received" as the message arrives, before the task runs under its
    ids: the line carries the ids in the message's headers all the same, and a message sent
    outside any request none of them, not the earlier task's."""
    worker, officer, facility, request_id, task_id = officers_reconciliation

    received = _received_line(worker, wait_for, "ledger.tasks.reconcile_ledger", task_id)
    assert received["logger"] == "celery.worker.strategy"
    assert (received["request_id"], received["user_id"], received["facility_id"]) == (
        request_id,
        officer.pk,
        facility.pk,
    )
    assert "kiosk_id" not in received and "inmate_id" not in received
    # The lines Celery writes about how the task ended carry them as well.
    finished = _succeeded_line(worker, wait_for, "ledger.tasks.reconcile_ledger", task_id)
    assert (finished["request_id"], finished["user_id"], finished["facility_id"]) == (
        request_id,
        officer.pk,
        facility.pk,
    )

    later_id = broker.send(ledger_tasks.expire_stale_deposits)
    later = _received_line(worker, wait_for, "ledger.tasks.expire_stale_deposits", later_id)
    assert later["request_id"] is None
    assert "user_id" not in later and "facility_id" not in later


def test_the_received_and_failed_lines_of_a_failing_task_carry_the_ids_it_was_sent_with(
    broker, start_worker, wait_for
):
    """A task queued while ids are bound (as during a request) whose run fails: Celery's
    received line and its "raised unexpected" line both carry the ids."""
    worker = start_worker(LOG_FORMAT="json")
    request_id = uuid.uuid4().hex
    set_guid(request_id)  # as django-guid's middleware does
    bind(user_id=5, facility_id=6)
    try:
        # An argument the task does not take: its run fails with a TypeError. send_task, as
        # apply_async would refuse it before sending.
        with app.connection_for_write(broker.url) as broker_connection:
            task_id = app.send_task(
                "ledger.tasks.expire_stale_deposits",
                kwargs={"unexpected": 1},
                queue=broker.queue,
                connection=broker_connection,
            ).id
    finally:
        clear_guid()
        clear_context()

    raised = re.compile(rf"ledger\.tasks\.expire_stale_deposits\[{task_id}\] raised unexpected: ")
    failed = wait_for(
        lambda: next(
            (line for line in _json_lines(worker.log()) if raised.search(line["message"])),
            None,
        ),
        what="the worker to fail the task",
    )
    received = _received_line(worker, wait_for, "ledger.tasks.expire_stale_deposits", task_id)
    for line in (received, failed):
        assert (line["request_id"], line["user_id"], line["facility_id"]) == (request_id, 5, 6)
    assert failed["level"] == "ERROR"


def test_a_superusers_task_logs_the_user_and_no_facility(
    client, broker, start_worker, wait_for, monkeypatch
):
    superuser = StaffFactory(is_superuser=True)
    worker = start_worker(LOG_FORMAT="json")

    request_id, task_id = _queue_reconciliation_through_the_admin(
        client, broker, monkeypatch, superuser
    )

    line = _succeeded_line(worker, wait_for, "ledger.tasks.reconcile_ledger", task_id)
    assert (line["request_id"], line["user_id"]) == (request_id, superuser.pk)
    assert "facility_id" not in line
