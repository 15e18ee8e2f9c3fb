"""The per-device throttle: a counter per kiosk and window in the shared cache, refused with
429 ``throttled`` and ``Retry-After`` past the rate, never touching another kiosk's count."""

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from commissary.cache import RedisCache, count_hit
from kiosk.authentication import DeviceThrottle
from kiosk.models import KioskSession

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


def test_a_window_counter_on_redis_always_expires():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    assert [count_hit(cache, "test-window", 60) for _ in range(3)] == [1, 2, 3]
    key = cache.make_and_validate_key("test-window")
    assert 0 < cache._cache.get_client(key).ttl(key) <= 60


def test_a_window_counter_on_another_cache_counts_too():
    other = LocMemCache("throttle-test", {})
    assert [count_hit(other, "k", 60) for _ in range(3)] == [1, 2, 3]
    assert count_hit(other, "another", 60) == 1


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
