"""The cluster tests fail loudly under CI when PostgreSQL's server binaries are missing, and
skip elsewhere."""

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
