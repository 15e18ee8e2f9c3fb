"""The per-device throttle: a sliding window per kiosk in the shared cache, refused with 429
``throttled`` and ``Retry-After`` past the rate, never touching another kiosk's count, atomic on
Redis and on the database cache; sign-out is never throttled."""

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.test import override_settings

from commissary.cache import RedisCache, take_slot
from kiosk.authentication import DeviceThrottle
from kiosk.models import KioskSession
from tests.concurrency.conftest import _run_together

from .conftest import Kiosk, error_of


def test_requests_past_the_rate_get_429_with_retry_after_and_other_kiosks_go_on(
    facility, inmate, monkeypatch
):
    monkeypatch.setattr(DeviceThrottle, "rate", "5/min", raising=False)
    busy, quiet = Kiosk(facility, "Busy"), Kiosk(facility, "Quiet")
    busy.sign_in(inmate)
    quiet.sign_in(inmate)
    answers = [busy.get("me/balance") for _ in range(4)]  # the sign-in was the first
    assert [answer.status_code for answer in answers] == [200] * 4
    refused = busy.get("me/balance")
    assert refused.status_code == 429
    assert error_of(refused) == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert quiet.get("me/balance").status_code == 200


# A minute boundary: the fixed windows used before started afresh here.
EDGE = 1_800_000_000.0


def test_a_burst_across_a_window_edge_gets_no_more_than_the_rate(facility, inmate, monkeypatch):
    """Five a minute: five requests just before a minute's edge and five just after were all
    let through by fixed windows (twice the rate in a second); the sliding window refuses the
    second five until a minute after the first."""
    clock = [EDGE - 0.5]
    monkeypatch.setattr(DeviceThrottle, "rate", "5/min", raising=False)
    monkeypatch.setattr(DeviceThrottle, "timer", lambda self: clock[0])
    kiosk = Kiosk(facility)
    kiosk.sign_in(inmate)
    assert [kiosk.get("me/balance").status_code for _ in range(4)] == [200] * 4
    clock[0] = EDGE + 0.5
    refused = kiosk.get("me/balance")
    assert refused.status_code == 429
    assert error_of(refused) == "throttled"
    assert int(refused["Retry-After"]) == 59
    clock[0] = EDGE + 59.4
    assert kiosk.get("me/balance").status_code == 429
    clock[0] = EDGE + 59.6  # the first five are now more than a minute old
    assert [kiosk.get("me/balance").status_code for _ in range(5)] == [200] * 5
    assert kiosk.get("me/balance").status_code == 429


def test_a_sliding_window_on_redis_counts_exactly_and_expires():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    taken = [
        take_slot("default", "test-slot", limit=3, window_seconds=60, now=EDGE) for _ in range(4)
    ]
    assert taken[:3] == [None] * 3
    assert taken[3] == 60
    assert take_slot("default", "test-slot", limit=3, window_seconds=60, now=EDGE + 45) == 15
    assert take_slot("default", "test-slot", limit=3, window_seconds=60, now=EDGE + 60) is None
    key = cache.make_and_validate_key("test-slot")
    assert 0 < cache._cache.get_client(key).pttl(key) <= 60_000


def _database_cache():
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": settings.DATABASE_CACHE_TABLE,
        }
    }


@pytest.mark.django_db
def test_a_sliding_window_on_the_database_cache_counts_like_redis():
    with override_settings(CACHES=_database_cache()):
        assert isinstance(caches["default"], DatabaseCache)
        taken = [
            take_slot("default", "db-slot", limit=3, window_seconds=60, now=EDGE) for _ in range(4)
        ]
        assert taken == [None, None, None, 60]
        assert take_slot("default", "db-slot", limit=3, window_seconds=60, now=EDGE + 60) is None
        assert len(caches["default"].get("db-slot")) == 1


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_thirty_hits_at_once_on_the_database_cache_take_exactly_the_limit():
    """Django's ``incr`` on the database cache reads and writes with nothing held between, so
    concurrent workers lost each other's hits; the row is now held for the read and the write."""
    with override_settings(CACHES=_database_cache()):
        outcomes = _run_together(
            [
                lambda n=n: take_slot(
                    "default", "db-burst", limit=10, window_seconds=60, now=EDGE + n / 1000
                )
                for n in range(30)
            ]
        )
        assert all(outcome.succeeded for outcome in outcomes), outcomes
        assert sum(outcome.value is None for outcome in outcomes) == 10
        assert len(caches["default"].get("db-burst")) == 10
        caches["default"].clear()


@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
def test_a_sliding_window_in_another_cache_counts_too():
    taken = [take_slot("default", "k", limit=2, window_seconds=60, now=EDGE) for _ in range(3)]
    assert taken == [None, None, 60]
    assert take_slot("default", "another", limit=2, window_seconds=60, now=EDGE) is None


def test_a_throttled_kiosk_can_still_sign_the_inmate_out(facility, inmate, monkeypatch):
    monkeypatch.setattr(DeviceThrottle, "rate", "3/min", raising=False)
    kiosk = Kiosk(facility)
    kiosk.sign_in(inmate)
    while kiosk.get("me/balance").status_code != 429:
        pass
    answer = kiosk.delete("sessions/current")
    assert answer.status_code == 204, answer.content
    session = KioskSession.objects.get()
    assert session.ended_at is not None
    kiosk.session = None
    assert error_of(kiosk.get("me/balance")) == "throttled"
