"""The Redis cache keeps one client per connection pool, and still caches."""

from django.core.cache import caches

from commissary.cache import RedisCache


def test_the_redis_cache_reuses_its_client_and_stores_values():
    cache = caches["default"]
    assert isinstance(cache, RedisCache)
    cache.set("reuse-probe", [1.5, 2.5], 30)
    assert cache.get("reuse-probe") == [1.5, 2.5]
    first = cache._cache.get_client("reuse-probe", write=True)
    assert cache._cache.get_client("other", write=True) is first
    assert cache._cache.get_client("reuse-probe") is first  # one server: reads go there too
    cache.delete("reuse-probe")
    assert cache.get("reuse-probe") is None
