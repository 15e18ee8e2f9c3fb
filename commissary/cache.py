"""The shared cache: Django's Redis cache with one Redis client per connection pool instead of
one per call, and the sliding-window hit counter the kiosk throttles keep in it (``take_slot``),
atomic on Redis and on the database cache alike.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` around the shared pool for
every cache operation, and building one (its table of response callbacks) costs more CPU than
the round trip it makes: on the kiosk API, whose throttles read and write the cache on every
request, it was a tenth of a request's Python. A ``redis.Redis`` is safe to share between
threads (each command takes a connection from the pool), so one a pool is kept. The throttle's
script, sent on every kiosk request, goes instead over a connection each thread keeps
(``RedisCache._slot_script``): taking one from the pool and giving it back cost a quarter of it.
"""

import base64
import datetime as dt
import math
import os
import pickle
import secrets
import threading

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.db import connections, router, transaction
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry


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

    # A sliding window log in one sorted set a key: drop the hits older than the window, and
    # add this one if fewer than the limit remain, else answer how long until the oldest
    # leaves. One script runs whole, so concurrent hits from every web worker count exactly,
    # in one round trip; the set never outlives its window.
    _TAKE_SLOT = (
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2]) "
        "if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then "
        "  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4]) "
        "  redis.call('PEXPIRE', KEYS[1], ARGV[5]) "
        "  return -1 "
        "end "
        "local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') "
        "return tonumber(oldest[2]) + tonumber(ARGV[5]) - tonumber(ARGV[1])"
    )

    def take_slot(self, key: str, *, limit: int, window_seconds: float, now: float):
        """See ``take_slot``."""
        key = self.make_and_validate_key(key)
        script = self._slot_script()
        now_ms, window_ms = int(now * 1000), int(window_seconds * 1000)
        member = f"{now_ms}:{secrets.token_hex(6)}"
        wait_ms = script(keys=[key], args=[now_ms, now_ms - window_ms, limit, member, window_ms])
        return None if wait_ms < 0 else wait_ms / 1000

    def _slot_script(self):
        """The sliding-window script on a client that keeps one connection of its own, one
        client a thread and process (redis-py's ``single_connection_client``). The script runs
        on every kiosk request, and taking a connection from the shared pool and giving it
        back (the pool's lock and bookkeeping, and a check that the socket has nothing left
        to read) cost a quarter of its CPU: about 25 us of 100 us a request. Where the pool's
        check would have found the connection closed (Redis restarted, or dropped it idle) and
        opened another before sending, this connection is opened again and the script sent
        once more (the same member: a hit the lost answer had counted is not counted twice). A
        process forked from this one makes its own."""
        local = self.__dict__.setdefault("_slot_local", threading.local())
        if getattr(local, "pid", None) != os.getpid():
            pool = self._cache._get_connection_pool(True)
            client = self._cache._client(connection_pool=pool, single_connection_client=True)
            client.connection.retry = Retry(NoBackoff(), 1)
            local.script = client.register_script(self._TAKE_SLOT)
            local.pid = os.getpid()
        return local.script


def take_slot(alias: str, key: str, *, limit: int, window_seconds: float, now: float):
    """Count one hit at ``now`` (seconds) against at most ``limit`` hits in any
    ``window_seconds`` (a sliding window, so a burst cannot reach twice the rate across the edge
    of a fixed window). Returns None when the hit fits, else the seconds until one will; a
    refused hit is not counted. Atomic however many workers share the cache: on Redis one
    script, on the database cache one transaction holding the key's row, on another cache (a
    single process's memory) a lock."""
    cache = caches[alias]
    if isinstance(cache, RedisCache):
        return cache.take_slot(key, limit=limit, window_seconds=window_seconds, now=now)
    if isinstance(cache, DatabaseCache):
        return _take_slot_in_database(
            alias, cache, key, limit=limit, window_seconds=window_seconds, now=now
        )
    with _local_lock:
        hits = [hit for hit in cache.get(key, []) if hit > now - window_seconds]
        wait = _slot_wait(hits, limit=limit, window_seconds=window_seconds, now=now)
        if wait is None:
            cache.set(key, [*hits, now], math.ceil(window_seconds))
        return wait


_local_lock = threading.Lock()


def _slot_wait(hits: list[float], *, limit: int, window_seconds: float, now: float):
    if len(hits) < limit:
        return None
    return min(hits) + window_seconds - now


def _take_slot_in_database(alias, cache, key, *, limit, window_seconds, now):
    """The sliding window of ``take_slot`` in the database cache's table, stored as an ordinary
    cache entry (the hit times, pickled as Django stores values). The row is made if missing,
    then read ``FOR UPDATE`` and rewritten in one transaction, so two workers never both take
    the last slot (Django's ``incr`` there is a read and a write with nothing held between)."""
    key = cache.make_and_validate_key(key)
    database = router.db_for_write(cache.cache_model_class)
    connection = connections[database]
    table = connection.ops.quote_name(settings.CACHES[alias]["LOCATION"])
    expires = connection.ops.adapt_datetimefield_value(
        timezone.now() + dt.timedelta(seconds=math.ceil(window_seconds))
    )
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with transaction.atomic(using=database), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (cache_key, value, expires) VALUES (%s, %s, %s) "  # noqa: S608 - the configured table's quoted name; values are bound
            "ON CONFLICT (cache_key) DO NOTHING",
            [key, _encoded([], cache), expires],
        )
        cursor.execute(f"SELECT value FROM {table} WHERE cache_key = %s{lock}", [key])  # noqa: S608 - as above
        stored = pickle.loads(base64.b64decode(cursor.fetchone()[0]))  # noqa: S301 - written by this function or Django's cache, never by a client
        hits = (
            [hit for hit in stored if hit > now - window_seconds]
            if isinstance(stored, list)
            else []
        )
        wait = _slot_wait(hits, limit=limit, window_seconds=window_seconds, now=now)
        if wait is None:
            cursor.execute(
                f"UPDATE {table} SET value = %s, expires = %s WHERE cache_key = %s",  # noqa: S608 - as above
                [_encoded([*hits, now], cache), expires, key],
            )
    return wait


def _encoded(value, cache) -> str:
    """A value as Django's database cache stores it."""
    return base64.b64encode(pickle.dumps(value, cache.pickle_protocol)).decode("latin1")
