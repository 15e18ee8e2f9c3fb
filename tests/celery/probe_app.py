"""The project's Celery app with a few tasks of the tests' own, for a real worker started with
``start_worker(app_module="tests.celery.probe_app")``: a task that sleeps (for time limits and
a lost pool process) and one that takes string arguments (for what the worker's lines show of
them). Only the worker imports this module; the tests send these tasks by name, so the test
process's app never registers them.

Also a remote-control command, ``held_request_count``: how many task messages the worker keeps
for its log lines (commissary.celery), so a test can see that none is kept once its task is
done."""

import logging
import os
import time
from pathlib import Path

from celery.worker.control import inspect_command

from commissary import celery as commissary_celery
from commissary.celery import app

__all__ = ["app"]

probe_log = logging.getLogger("tests.celery.probe_app")


def _sleep_once(marker: str, seconds: float) -> int:
    path = Path(marker)
    if path.exists():
        return 0
    path.write_text(str(os.getpid()))
    probe_log.info("probe sleeping in process %s", os.getpid())
    time.sleep(seconds)
    return 1


@app.task(name="probe.sleep_once")
def sleep_once(marker: str, seconds: float) -> int:
    """Sleeps ``seconds`` the first time it runs for ``marker`` (a file it creates, holding the
    process id it runs in); returns at once after that, so a message delivered again after its
    process was lost does not sleep again."""
    return _sleep_once(marker, seconds)


@app.task(name="probe.sleep_once_retried", retry_on_worker_lost=True, default_retry_delay=600)
def sleep_once_retried(marker: str, seconds: float) -> int:
    """``sleep_once``, retried (a new message, in ten minutes) when its process is lost."""
    return _sleep_once(marker, seconds)


@app.task(name="probe.take", bind=True, max_retries=1)
def take(task, code: str, *, pin: str, facility_id: int, then: str = "succeed") -> dict:
    """Takes two strings and an id; fails when ``then`` is ``fail``, retries once when it is
    ``retry``; returns what it was given."""
    if then == "fail":
        raise ValueError("refused")
    if then == "retry" and task.request.retries == 0:
        raise task.retry(countdown=0)
    return {"code": code, "pin": pin, "facility_id": facility_id}


@inspect_command()
def held_request_count(state) -> dict:
    return {"held": len(commissary_celery._held_requests)}
