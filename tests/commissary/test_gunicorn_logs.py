"""gunicorn started as in production (``-c python:commissary.gunicorn``): under
``LOG_FORMAT=json`` every line it writes, its own and the site's, from start to shutdown, is
one JSON object, and its access line names the request id the response answered, with no
query string and no request header, and a line written outside a request (after a 500
gunicorn answered itself too) carries no request id; under ``LOG_FORMAT=text`` its lines are
gunicorn's own, as a person at a terminal knows them (commissary.gunicorn, commissary.logs)."""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from commissary.logs import GunicornFields, JsonFormatter

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
SECRET = "s3cr3t-token-value"


@dataclass
class Gunicorn:
    process: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    port: int

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def get(self, path: str, **headers: str):
        request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
            f"http://127.0.0.1:{self.port}{path}", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return answer.status, dict(answer.headers)
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: the master stops its workers and exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _database_url() -> str | None:
    """The test database, should a request reach it (none of these needs a row)."""
    configured = os.environ.get("DATABASE_URL")
    if not configured or connection.vendor != "postgresql":
        return configured
    name = connection.settings_dict["NAME"]
    return urlunsplit(urlsplit(configured)._replace(path="/" + quote(name)))


@pytest.fixture
def start_gunicorn(db, tmp_path):
    started: list[Gunicorn] = []

    def start(log_format: str, app: str = "commissary.wsgi") -> Gunicorn:
        env = {
            **os.environ,
            "LOG_FORMAT": log_format,
            "DEBUG": "false",
            "PYTHONUNBUFFERED": "1",
        }
        database_url = _database_url()
        if database_url:
            env["DATABASE_URL"] = database_url
        stdout_path = tmp_path / f"gunicorn-{log_format}.out"
        stderr_path = tmp_path / f"gunicorn-{log_format}.err"
        with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
            process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "python:commissary.gunicorn",
                    app,
                    "--bind",
                    "127.0.0.1:0",
                    "--workers",
                    "1",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        server = Gunicorn(process, stdout_path, stderr_path, port=0)
        started.append(server)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not (found := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", server.stderr())):
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"gunicorn did not start:\n{server.stderr()}\n{server.stdout()}")
            time.sleep(0.1)
        server.port = int(found.group(1))
        return server

    yield start
    for server in started:
        server.stop()
        print(f"----- gunicorn (exit {server.process.returncode}) -----")
        print(server.stderr())
        print(server.stdout())


def _every_line_as_json(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def test_under_json_every_gunicorn_line_is_json_and_the_access_line_carries_the_request_id(
    start_gunicorn,
):
    server = start_gunicorn("json")
    request_id = str(uuid.uuid4())

    healthy, healthy_headers = server.get(
        "/healthz", **{"X-Request-ID": request_id, "Authorization": f"Bearer {SECRET}"}
    )
    refused, refused_headers = server.get(f"/api/kiosk/v1/sessions?token={SECRET}")
    server.stop()

    assert (healthy, refused) == (200, 401)
    assert healthy_headers["X-Request-ID"] == request_id
    assert server.stdout() == ""  # everything is on standard error, one JSON object a line
    lines = _every_line_as_json(server.stderr())
    fields = {"time", "level", "logger", "message", "request_id"}
    assert all(fields <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert [(line["method"], line["path"], line["status"]) for line in access] == [
        ("GET", "/healthz", 200),
        ("GET", "/api/kiosk/v1/sessions", 401),
    ]
    assert [line["message"] for line in access] == [
        "GET /healthz 200",
        "GET /api/kiosk/v1/sessions 401",
    ]
    assert access[0]["request_id"] == request_id
    assert access[1]["request_id"] == refused_headers["X-Request-ID"]
    assert all(line["duration_ms"] >= 0 and line["remote_addr"] == "127.0.0.1" for line in access)
    # The site's own line for the refusal has the same request id as gunicorn's access line.
    (unauthorized,) = [line for line in lines if line["logger"] == "django.request"]
    assert unauthorized["request_id"] == access[1]["request_id"]
    # gunicorn's start and stop are JSON too.
    messages = [line["message"] for line in lines if line["logger"] == "gunicorn.error"]
    assert any(message.startswith("Listening at: http://127.0.0.1:") for message in messages)
    assert "Shutting down: Master" in messages
    # Neither the query string nor a request header reaches the log.
    assert SECRET not in server.stderr()


def test_after_gunicorn_answered_a_500_itself_its_lines_outside_a_request_carry_no_request_id(
    start_gunicorn,
):
    """The view and the error page both fail: the exception leaves Django, which so never
    closes a response (the end of a request it knows), and gunicorn answers 500 itself. The
    traceback and the access line of that request carry its id; the next request's lines its
    own; the worker's lines outside a request none."""
    server = start_gunicorn("json", app="tests.commissary.unanswerable_wsgi")
    failed_ids = [str(uuid.uuid4()), str(uuid.uuid4())]

    # A failure, a request that succeeds, and a failure last, before the worker exits.
    first, first_headers = server.get("/fail?token=" + SECRET, **{"X-Request-ID": failed_ids[0]})
    healthy, healthy_headers = server.get("/healthz")
    last, _last_headers = server.get("/fail", **{"X-Request-ID": failed_ids[1]})
    server.stop()

    assert (first, healthy, last) == (500, 200, 500)
    assert "X-Request-ID" not in first_headers  # gunicorn's own answer, not the site's
    lines = _every_line_as_json(server.stderr())
    error_lines = [line for line in lines if line["logger"] == "gunicorn.error"]
    tracebacks = [
        line for line in error_lines if line["message"].startswith("Error handling request")
    ]
    assert [(line["message"], line["request_id"]) for line in tracebacks] == [
        ("Error handling request GET /fail", failed_ids[0]),
        ("Error handling request GET /fail", failed_ids[1]),
    ]
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    assert [(line["path"], line["status"], line["request_id"]) for line in access] == [
        ("/fail", 500, failed_ids[0]),
        ("/healthz", 200, healthy_headers["X-Request-ID"]),
        ("/fail", 500, failed_ids[1]),
    ]
    # Every other line of gunicorn's (start, the worker booted, the signal, the worker exiting,
    # the master shutting down) is written outside a request.
    outside = [line for line in error_lines if line not in tracebacks]
    assert any(line["message"].startswith("Worker exiting") for line in outside)
    assert [line for line in outside if line["request_id"] is not None] == []
    assert all("user_id" not in line and "facility_id" not in line for line in outside)
    assert SECRET not in server.stderr()


def _gunicorn_record(name: str, msg: str, args) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, __file__, 0, msg, args, None)


def test_gunicorns_own_line_naming_a_request_loses_its_query_string():
    record = _gunicorn_record(
        "gunicorn.error", "Error handling request %s", (f"/family/pay?token={SECRET}",)
    )

    GunicornFields().filter(record)

    assert record.getMessage() == "Error handling request /family/pay"


def test_the_access_line_writes_only_its_fields_never_the_headers():
    atoms = {
        "m": "POST",
        "U": "/api/kiosk/v1/orders",
        "s": "201",
        "D": 12345,
        "B": 321,
        "h": "10.0.0.7",
        "r": f"POST /api/kiosk/v1/orders?token={SECRET} HTTP/1.1",
        "{authorization}i": f"Kiosk {SECRET}",
        "{cookie}i": f"sessionid={SECRET}",
        "{x-request-id}o": "0f" * 16,
    }
    record = _gunicorn_record("gunicorn.access", "%(r)s", atoms)
    record.request_id = None  # LogContextFilter's, outside the request's context

    GunicornFields().filter(record)
    line = json.loads(JsonFormatter().format(record))

    assert line == {
        "time": line["time"],
        "level": "INFO",
        "logger": "gunicorn.access",
        "message": "POST /api/kiosk/v1/orders 201",
        "request_id": "0f" * 16,
        "method": "POST",
        "path": "/api/kiosk/v1/orders",
        "status": 201,
        "duration_ms": 12.345,
        "response_bytes": 321,
        "remote_addr": "10.0.0.7",
    }


def test_under_text_gunicorn_writes_its_own_lines_as_before(start_gunicorn):
    server = start_gunicorn("text")

    status, _headers = server.get("/healthz")
    server.stop()

    assert status == 200
    # gunicorn's access line (Apache's combined format) on standard output, its own lines on
    # standard error: what a person at a terminal has always seen.
    assert re.search(r'127\.0\.0\.1 - - \[.+\] "GET /healthz HTTP/1\.1" 200 ', server.stdout())
    assert re.search(r"\[INFO\] Listening at: http://127\.0\.0\.1:\d+", server.stderr())
    assert not any(line.startswith("{") for line in server.stderr().splitlines())
