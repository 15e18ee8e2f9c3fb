import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _sandbox_on(settings):
    settings.PAYMENTS_SANDBOX = True


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Rate limits live in the shared cache (Redis in the suite): each test starts clean.
    cache.clear()
    yield
    cache.clear()
