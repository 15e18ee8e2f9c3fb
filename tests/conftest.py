"""Suite-wide set-up. The suite runs against PostgreSQL (row locks, triggers and CHECKs are
what it proves); it refuses to start on anything else rather than quietly test less."""

import pytest
from django.conf import settings

from ledger.reconciliation import run_checks

# PIN and password hashing at full strength costs ~0.3 s a call; the tests are not about it.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_sessionstart(session):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            "The test suite needs PostgreSQL: set DATABASE_URL=postgres://… (scripts/test does)."
        )


@pytest.fixture
def assert_ledger_consistent():
    """Call after a scenario: every reconciliation check must come back clean."""

    def check():
        findings = run_checks()
        assert findings == [], findings

    return check
