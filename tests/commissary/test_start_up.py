"""The processes a new user starts (``scripts/run``: gunicorn with ``-c
python:commissary.gunicorn``, ``celery -A commissary worker``) import the project before anything
names its settings: their environment has no ``DJANGO_SETTINGS_MODULE``, as a terminal's has
none. The package must name them itself before any import that reads them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "code",
    (
        "import commissary.gunicorn",  # gunicorn's config module, imported first
        "from commissary import celery_app; celery_app.loader.import_default_modules()",
    ),
)
def test_the_project_imports_without_django_settings_module_in_the_environment(code):
    environment = {
        name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"
    }
    finished = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-c", code],
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
