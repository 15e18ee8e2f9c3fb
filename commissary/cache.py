"""Django's Redis cache, with one Redis client per connection pool instead of one per call.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` around the shared pool for
every cache operation, and building one (its table of response callbacks) costs more CPU than
the round trip it makes: on the kiosk API, whose throttles read and write the cache on every
request, it was a tenth of a request's Python. A ``redis.Redis`` is safe to share between
threads (each command takes a connection from the pool), so one a pool is kept.
"""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    # INCR, and EXPIRE when the INCR created the counter: one command, atomic (a script runs
    # whole), so a counter never loses its expiry and a hit costs one round trip.
    _COUNT_HIT = (
        "local hits = redis.call('INCR', KEYS[1]) "
        "if hits == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end "
        "return hits"
    )

    def count_hit(self, key: str, timeout: int) -> int:
        """Add one to the counter at ``key`` (created to live ``timeout`` seconds) and return
        it."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        scripts = self.__dict__.setdefault("_count_scripts", {})
        script = scripts.get(id(client))
        if script is None:
            script = scripts[id(client)] = client.register_script(self._COUNT_HIT)
        return script(keys=[key], args=[timeout])


def count_hit(cache, key: str, timeout: int) -> int:
    """Add one to a counter that lives ``timeout`` seconds and return it: on Redis in one
    atomic round trip, on another cache (the embedded default's database cache) with its own
    ``add`` and ``incr``."""
    if isinstance(cache, RedisCache):
        return cache.count_hit(key, timeout)
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, timeout)
        return 1
