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


def _slot_connection(cache):
    return cache._slot_script().registered_client.connection


def test_the_throttle_keeps_one_connection_a_thread_and_survives_losing_it():
    """The throttle's script goes over a connection of the thread's own, not one taken from
    the pool and given back each time; another thread gets another; a connection the server
    closed is replaced and the hit still counted."""
    import threading

    from commissary.cache import take_slot

    cache = caches["default"]
    key = "one-connection-probe"
    cache.delete(key)
    assert take_slot("default", key, limit=2, window_seconds=60, now=1_000.0) is None
    mine = _slot_connection(cache)
    assert mine is not None
    assert mine not in cache._cache._get_connection_pool(True)._available_connections
    assert take_slot("default", key, limit=2, window_seconds=60, now=1_001.0) is None
    assert _slot_connection(cache) is mine

    other = []
    thread = threading.Thread(target=lambda: other.append(_slot_connection(cache)))
    thread.start()
    thread.join()
    assert other[0] is not None and other[0] is not mine

    admin = cache._cache.get_client(write=True)
    mine.send_command("CLIENT", "ID")
    admin.client_kill_filter(_id=mine.read_response())
    # Two hits taken: the third is refused after the reconnection, counted on the same set.
    assert take_slot("default", key, limit=2, window_seconds=60, now=1_002.0) == 58
    cache.delete(key)
