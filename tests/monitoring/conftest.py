import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _sandbox_on(settings):
    settings.PAYMENTS_SANDBOX = True


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()
