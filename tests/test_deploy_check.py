"""Secure by default: with the production settings the README gives (a secret key, HTTPS, a
host name), Django's deployment check finds nothing to warn about."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

REPOSITORY = Path(__file__).resolve().parents[1]


def _check_deploy(**settings):
    # The browser tests' process allows sync database calls under Playwright's event loop;
    # a deployment never does, so the check runs without that.
    environment = {
        **{
            name: value for name, value in os.environ.items() if name != "DJANGO_ALLOW_ASYNC_UNSAFE"
        },
        "SECRET_KEY": secrets.token_urlsafe(60),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HTTPS": "true",
        "ALLOWED_HOSTS": "pay.example.org",
        "DEBUG": "false",
        "PAYMENTS_SANDBOX": "false",
        **settings,
    }
    return subprocess.run(  # noqa: S603 - the project's own manage.py, fixed arguments
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_production_settings():
    finished = _check_deploy()
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "no issues" in finished.stdout


def test_check_deploy_warns_of_the_sandbox_provider_in_production():
    finished = _check_deploy(PAYMENTS_SANDBOX="true")
    assert finished.returncode != 0
    assert "commissary.W001" in finished.stdout + finished.stderr


def test_production_without_field_encryption_keys_is_refused_at_every_start():
    """Not only under --deploy: migrate and runserver run the same check."""
    environment = {
        **{
            name: value
            for name, value in os.environ.items()
            if name
            not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "FIELD_ENCRYPTION_KEYS", "PAYMENTS_SANDBOX")
        },
        "SECRET_KEY": secrets.token_urlsafe(60),
        "HTTPS": "true",
        "ALLOWED_HOSTS": "pay.example.org",
        "DEBUG": "false",
    }
    finished = subprocess.run(  # noqa: S603 - the project's own manage.py, fixed arguments
        [sys.executable, "manage.py", "check"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert "payments.E001" in finished.stderr


def test_check_deploy_refuses_missing_field_encryption_keys_even_with_the_sandbox_on():
    finished = _check_deploy(FIELD_ENCRYPTION_KEYS="", PAYMENTS_SANDBOX="true")
    assert finished.returncode != 0
    assert "payments.E001" in finished.stdout + finished.stderr
