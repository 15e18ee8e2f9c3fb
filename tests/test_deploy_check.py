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
        "PAYER_HASH_KEY": secrets.token_urlsafe(48),
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


def test_check_deploy_refuses_a_missing_payer_hash_key():
    finished = _check_deploy(PAYER_HASH_KEY="")
    assert finished.returncode != 0
    assert "payments.E004" in finished.stdout + finished.stderr


def test_production_without_a_payer_hash_key_is_refused_at_every_start():
    """Production by the start-up rule (DEBUG and the sandbox off, a public host name): plain
    ``check`` fails, as ``migrate`` and ``runserver`` would. With the key, it passes."""
    environment = {
        **{
            name: value
            for name, value in os.environ.items()
            if name not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "PAYER_HASH_KEY", "PAYMENTS_SANDBOX")
        },
        "SECRET_KEY": secrets.token_urlsafe(60),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "HTTPS": "true",
        "ALLOWED_HOSTS": "pay.example.org",
        "DEBUG": "false",
    }

    def check(**extra):
        return subprocess.run(  # noqa: S603 - the project's own manage.py, fixed arguments
            [sys.executable, "manage.py", "check"],
            cwd=REPOSITORY,
            env={**environment, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = check()
    assert refused.returncode != 0
    assert "payments.E004" in refused.stderr
    assert check(PAYER_HASH_KEY=secrets.token_urlsafe(48)).returncode == 0


def test_the_payer_hash_key_check_speaks_the_reader_s_language(settings):
    from django.utils import translation

    from payments.checks import check_payer_hash_key

    settings.DEBUG, settings.PAYMENTS_SANDBOX, settings.PAYER_HASH_KEY = False, False, ""
    settings.ALLOWED_HOSTS = ["pay.example.org"]
    with translation.override("zh-hans"):
        (error,) = check_payer_hash_key()
    assert error.id == "payments.E004"
    assert "未设置 PAYER_HASH_KEY" in error.msg
    settings.DEBUG = True  # development: the derived key is accepted
    assert check_payer_hash_key() == []
