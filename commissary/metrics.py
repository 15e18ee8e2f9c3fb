"""Prometheus metrics at ``/metrics``, for the operators' scraper and no one else.

Who may read them: addresses in ``METRICS_ALLOWED_CIDRS`` (settings; loopback only unless set),
judged by the address the connection came from (``REMOTE_ADDR``): every other caller gets 403.
A proxy in front of the site must not pass ``/metrics`` on (behind it every request would come
from the proxy's address).

What they say:
- requests: django-prometheus's middleware (counts and latencies by view, method and status);
- database time: ``commissary_database_statement_seconds``, every statement the web process
  sends, timed around Django's cursor (prepared kiosk statements included);
- kiosk orders: ``commissary_kiosk_orders_total`` by result (``placed`` or the refusal's code);
- figures read from the database when scraped, contributed by the apps that own the tables
  (``register_source``, filled in their ``AppConfig.ready``): deposits by state, scheduled
  runs by kind and state (failures included), the findings of the latest reconciliation.

With several web processes (gunicorn workers) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
folder of their own, so the counters of all of them are added up (docs/operations.md).
"""

import ipaddress
import os
import time
from collections.abc import Callable, Iterable
from functools import cache

from django.conf import settings
from django.db.backends.signals import connection_created
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric

DATABASE_STATEMENT_SECONDS = Histogram(
    "commissary_database_statement_seconds",
    "Time a database statement took, as the application saw it (round trip included).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
KIOSK_ORDERS = Counter(
    "commissary_kiosk_orders",
    "Kiosk orders answered, by result: placed, or the refusal's error code.",
    ["result"],
)

_sources: list[Callable[[], Iterable[Metric]]] = []


def register_source(source: Callable[[], Iterable[Metric]]) -> None:
    """Add a function that reads figures from the database when ``/metrics`` is scraped and
    returns them as metric families (an app's ``ready`` calls it for the tables it owns)."""
    if source not in _sources:
        _sources.append(source)


class _DatabaseFigures:
    """The registered sources, read at each scrape."""

    def describe(self):
        return []  # nothing is read at registration

    def collect(self):
        for source in _sources:
            yield from source()


def time_statement(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        DATABASE_STATEMENT_SECONDS.observe(time.perf_counter() - started)


def _time_the_connection(sender, connection, **kwargs):
    if time_statement not in connection.execute_wrappers:
        connection.execute_wrappers.append(time_statement)


connection_created.connect(_time_the_connection, dispatch_uid="commissary.metrics.db_time")


@cache
def _allowed_networks(cidrs: tuple[str, ...]):
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def is_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    networks = _allowed_networks(tuple(settings.METRICS_ALLOWED_CIDRS))
    return any(ip in network for network in networks if network.version == ip.version)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_DatabaseFigures())
        return registry
    return REGISTRY


@require_GET
def metrics(request):
    if not is_allowed(request.META.get("REMOTE_ADDR", "")):
        return HttpResponseForbidden("", content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY.register(_DatabaseFigures())
