"""The cluster tests fail loudly under CI when PostgreSQL's server binaries or client programs
are missing, and skip elsewhere."""

import pytest

from tests import clusters


def test_missing_binaries_fail_under_ci_and_skip_elsewhere(monkeypatch):
    monkeypatch.setattr(clusters, "binaries", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        clusters.require_binaries()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        clusters.require_binaries()


def test_missing_client_programs_fail_under_ci_and_skip_elsewhere(monkeypatch):
    monkeypatch.setattr(clusters, "client_binaries", lambda *names: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="pg_dump"):
        clusters.require_client_binaries("pg_dump", "pg_restore")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="pg_dump"):
        clusters.require_client_binaries("pg_dump", "pg_restore")


def test_client_programs_are_found_together():
    found = clusters.client_binaries("pg_dump", "pg_restore", "psql", "createdb")
    if found is None:
        pytest.skip("PostgreSQL's client programs are not installed")
    assert all((found / name).exists() for name in ("pg_dump", "pg_restore", "psql"))
    assert clusters.client_binaries("pg_dump", "no-such-program-here") is None
