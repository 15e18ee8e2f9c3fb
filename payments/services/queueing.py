"""How the payments services hand work to a Celery worker: by the task's registered name.

``payments.tasks`` wraps these services, so the services cannot import it back without an
import cycle. A task is a message with a name; the worker that runs it resolves the name, so
the services send the name and never need the tasks module. Tests replace ``queue`` to keep
the messages (``tests/conftest.py``)."""

from celery import current_app

SEND_RECEIPT = "payments.tasks.send_receipt"
MAKE_PROVIDER_CALL = "payments.tasks.make_provider_call"


def queue(task_name: str, **kwargs) -> None:
    """Send ``task_name(**kwargs)`` to the workers. Raises what the broker raises when it
    cannot take the message; callers decide whether that may fail them."""
    current_app.send_task(task_name, kwargs=kwargs)
