"""Log lines: one JSON object each, carrying the request id the response answers in
``X-Request-ID`` (a well-formed incoming one is kept, any other replaced), who and which facility
when known, and never a PIN, password, key or card token (commissary.logs). The id's way into a
Celery worker is in tests/celery/test_request_id_worker.py."""

import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid

import pytest
from celery import Celery
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from django_guid import set_guid

from commissary.celery import LOG_CONTEXT_HEADER
from commissary.logs import (
    JsonFormatter,
    LogContextFilter,
    LogContextMiddleware,
    bind,
    clear_context,
    current_context,
    logging_config,
)
from tests.factories import FacilityFactory, InmateFactory, StaffFactory
from tests.kiosk.conftest import Kiosk

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
WRONG_PIN = "91827364"


class CapturedLines:
    """What the site's console handler would write (its filter and JSON formatter), kept."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(LogContextFilter())
        self.handler.setFormatter(JsonFormatter())

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        """Each line parsed: fails when one is not a single JSON object."""
        parsed = [json.loads(line) for line in self.text.splitlines()]
        assert all(isinstance(line, dict) for line in parsed)
        return parsed


@pytest.fixture
def captured():
    lines = CapturedLines()
    root = logging.getLogger()
    root.addHandler(lines.handler)
    yield lines
    root.removeHandler(lines.handler)


@pytest.fixture
def kiosk(db):
    return Kiosk(FacilityFactory())


def _refused_sign_in(kiosk, inmate, **headers):
    answer = kiosk.post(
        "sessions", {"inmate_number": inmate.inmate_number, "pin": WRONG_PIN}, headers=headers
    )
    assert answer.status_code == 401, answer.content
    return answer


@pytest.mark.parametrize("written", [str, lambda value: value.hex], ids=["hyphens", "hex"])
def test_a_refused_kiosk_sign_in_logs_one_json_line_with_the_echoed_id_and_no_pin(
    kiosk, captured, written
):
    inmate = InmateFactory(facility=kiosk.facility)
    request_id = written(uuid.uuid4())

    answer = _refused_sign_in(kiosk, inmate, **{"X-Request-ID": request_id})

    assert answer["X-Request-ID"] == request_id
    refusals = [line for line in captured.lines() if line["logger"] == "django.request"]
    assert len(refusals) == 1
    refusal = refusals[0]
    assert refusal["request_id"] == request_id
    assert refusal["level"] == "WARNING"
    assert refusal["message"] == "Unauthorized: /api/kiosk/v1/sessions"
    assert refusal["facility_id"] == kiosk.facility.pk
    assert refusal["kiosk_id"] == kiosk.device.pk
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", refusal["time"])
    # Neither the PIN, the device key nor the inmate's card reaches the log.
    assert WRONG_PIN not in captured.text
    assert kiosk.key not in captured.text
    assert inmate.card_token not in captured.text


@pytest.mark.parametrize(
    "incoming",
    [
        "not-a-uuid",
        "{12345678-1234-4234-8234-123456789012}",  # uuid.UUID() takes braces
        "urn:uuid:12345678-1234-4234-8234-123456789012",  # and a URN
        "1-2345678123442348234123456789012" + "-" * 500,  # and any number of hyphens
        '12345678-1234-4234-8234-123456789012"}\n{"level": "CRITICAL',
    ],
)
def test_a_malformed_incoming_request_id_is_replaced_by_a_new_one(kiosk, captured, incoming):
    inmate = InmateFactory(facility=kiosk.facility)

    answer = _refused_sign_in(kiosk, inmate, **{"X-Request-ID": incoming})

    request_id = answer["X-Request-ID"]
    assert GENERATED_ID.fullmatch(request_id)
    refusal = next(line for line in captured.lines() if line["logger"] == "django.request")
    assert refusal["request_id"] == request_id
    assert incoming not in captured.text


def test_a_request_without_an_id_gets_a_new_one_each_time(kiosk, captured):
    inmate = InmateFactory(facility=kiosk.facility)

    first = _refused_sign_in(kiosk, inmate)["X-Request-ID"]
    second = _refused_sign_in(kiosk, inmate)["X-Request-ID"]

    assert GENERATED_ID.fullmatch(first) and GENERATED_ID.fullmatch(second) and first != second
    ids = [line["request_id"] for line in captured.lines() if line["logger"] == "django.request"]
    assert ids == [first, second]


def test_a_signed_in_inmates_lines_name_the_inmate(kiosk, captured):
    inmate = InmateFactory(facility=kiosk.facility)
    kiosk.sign_in(inmate)

    answer = kiosk.get("orders/999999")

    assert answer.status_code == 404
    missing = next(line for line in captured.lines() if line["logger"] == "django.request")
    assert missing["inmate_id"] == inmate.pk
    assert missing["facility_id"] == kiosk.facility.pk


def test_a_signed_in_users_lines_carry_the_user_id_until_the_response_is_closed(db, captured):
    user = StaffFactory()
    request = RequestFactory().get("/anything")
    request.user = user

    request_id = str(uuid.uuid4())

    def view(request):
        set_guid(request_id)  # as django-guid's middleware does
        logging.getLogger("commissary.test").warning("inside")
        return HttpResponse()

    response = LogContextMiddleware(view)(request)
    logging.getLogger("commissary.test").warning("answered")
    response.close()  # sends request_finished
    logging.getLogger("commissary.test").warning("closed")

    inside, answered, closed = captured.lines()
    assert inside["user_id"] == answered["user_id"] == user.pk
    assert inside["request_id"] == answered["request_id"] == request_id
    assert "user_id" not in closed
    assert closed["request_id"] is None


def test_fields_named_like_secrets_are_never_written(captured):
    logging.getLogger("commissary.test").warning(
        "refused",
        extra={
            "pin": "5678",
            "card_token": "tok-secret-card",
            "device_key": "key-secret",
            "password": "pw-secret",
            "amount_fen": 1234,
        },
    )

    (line,) = captured.lines()
    assert line["amount_fen"] == 1234
    for secret in ("5678", "tok-secret-card", "key-secret", "pw-secret"):
        assert secret not in captured.text


def _log_from_a_fresh_process(**env) -> subprocess.CompletedProcess:
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('commissary.example').warning('deposit %s refused', 7)"
    )
    return subprocess.run(  # noqa: S603 - our interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env={
            **{name: value for name, value in os.environ.items() if name != "LOG_FORMAT"},
            "DJANGO_SETTINGS_MODULE": "commissary.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_logs_json_and_debug_logs_text_unless_log_format_says():
    production = _log_from_a_fresh_process(DEBUG="false")
    debug = _log_from_a_fresh_process(DEBUG="true")
    chosen = _log_from_a_fresh_process(DEBUG="true", LOG_FORMAT="json")

    (line,) = [json.loads(text) for text in production.stderr.splitlines()]
    assert {name: line[name] for name in ("level", "logger", "message", "request_id")} == {
        "level": "WARNING",
        "logger": "commissary.example",
        "message": "deposit 7 refused",
        "request_id": None,
    }
    assert re.fullmatch(
        r"\S+ \S+ WARNING commissary\.example \[None\] deposit 7 refused", debug.stderr.strip()
    )
    assert json.loads(chosen.stderr)["message"] == "deposit 7 refused"


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT must be json or text"):
        logging_config(log_format="yaml", level="INFO")


# On an app of its own, so the project's task registry stays the project's; Celery's task
# signals, which commissary.celery connects, are sent for every app's tasks. Not the current
# app: made current, it would stand in for the project's app in the test thread only, so a
# shared task patched there (``mock.patch.object(tasks.x, "delay")``) would not be the one a
# live server's thread calls.
_probe_app = Celery("tests.commissary.test_logs", set_as_current=False)


@_probe_app.task(name="tests.commissary.log_context_probe", shared=False)
def _log_context_probe() -> dict:
    return dict(current_context())


def test_a_task_runs_with_exactly_the_ids_it_was_sent_and_its_caller_keeps_its_own():
    """commissary.celery binds the ids in the task's header (known names, integers only) while
    the task runs, and puts back what was bound before, here the caller's, once it has run."""
    bind(user_id=7, facility_id=3)
    try:
        sent = _log_context_probe.apply(
            headers={
                LOG_CONTEXT_HEADER: {
                    "user_id": 42,
                    "inmate_id": "9; DROP",
                    "password": 1,
                }
            }
        ).get()
        unsent = _log_context_probe.apply().get()

        assert sent == {"user_id": 42}
        assert unsent == {}
        assert dict(current_context()) == {"user_id": 7, "facility_id": 3}
    finally:
        clear_context()
