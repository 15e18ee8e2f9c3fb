"""/healthz says the process is up; /readyz says it can serve (database, broker, migrations)
and answers 503 when one of them cannot, naming the check and nothing else."""

import socket

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from commissary import health


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def _migrations_asked_again():
    health.MigrationsApplied._seen_applied = False
    yield
    health.MigrationsApplied._seen_applied = False


def assert_leaks_nothing(content: bytes) -> None:
    text = content.decode().lower()
    for secret in ("127.0.0.1", "localhost", "postgres", "redis", "version", "password", "5432"):
        assert secret not in text


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: a database query here would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_database_broker_and_migrations_are(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "migrations": "ok"},
    }
    assert_leaks_nothing(response.content)


@pytest.mark.django_db
def test_readyz_fails_with_503_when_the_broker_is_stopped(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unavailable", "migrations": "ok"},
    }
    assert_leaks_nothing(response.content)


@pytest.mark.django_db
def test_readyz_fails_with_503_while_a_migration_is_not_applied(client):
    recorder = MigrationRecorder(connection)
    latest = max(name for app, name in recorder.applied_migrations() if app == "ledger")
    recorder.record_unapplied("ledger", latest)  # rolled back with the test's transaction
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": "ok",
        "broker": "ok",
        "migrations": "unavailable",
    }
    assert_leaks_nothing(response.content)


@pytest.mark.django_db
def test_readyz_answers_get_only(client):
    assert client.post("/readyz").status_code == 405
