"""What a load balancer or orchestrator asks of a web process.

``/healthz``: the process is up and answers (nothing else is checked, so a database outage
does not get every web process restarted). ``/readyz``: it can serve — the database answers,
the Celery broker answers, and every migration in the code is applied to the database — using
django-health-check's checks. Either answers with as little as it can: a status per check by
name, never an error text, a host, a version or a setting (those go to the log, where the
checks write why they failed).

With a read replica configured, ``/readyz`` also says how far behind it is (``replica``: its
state and lag in seconds). That does not decide readiness: a replica that is behind or does
not answer only sends the reports back to the primary (``commissary.replica``).

The checks run one after another in the request's own thread (the library's view would run
the synchronous ones in an executor's threads, each opening a database connection of its own
that nothing closes in a synchronous web worker).
"""

import asyncio
import dataclasses
import inspect
import logging
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET
from health_check.base import HealthCheck
from health_check.checks import Database
from health_check.contrib.redis import Redis
from health_check.exceptions import HealthCheckException, ServiceUnavailable
from redis.asyncio import Redis as RedisClient

from commissary import replica

BROKER_TIMEOUT_SECONDS = 2

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration the code holds is applied. Once seen applied, a process does not ask
    again: only a deploy (new code, new processes) adds one."""

    alias: str = DEFAULT_DB_ALIAS

    _seen_applied = False

    def run(self) -> None:
        if MigrationsApplied._seen_applied:
            return
        executor = MigrationExecutor(connections[self.alias])
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise ServiceUnavailable("Migrations are not applied.")
        MigrationsApplied._seen_applied = True


@dataclasses.dataclass
class FilesystemBroker(HealthCheck):
    """The embedded set-up's broker (kombu's filesystem transport): its folders exist."""

    def run(self) -> None:
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        if not all(Path(options[key]).is_dir() for key in ("data_folder_in", "data_folder_out")):
            raise ServiceUnavailable("The broker's folders are missing.")


def broker_check() -> HealthCheck:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://", "unix://")):
        return Redis(
            client_factory=lambda: RedisClient.from_url(
                url,
                socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
                socket_timeout=BROKER_TIMEOUT_SECONDS,
            )
        )
    return FilesystemBroker()


def readiness_checks() -> dict[str, HealthCheck]:
    return {
        "database": Database(),
        "broker": broker_check(),
        "migrations": MigrationsApplied(),
    }


def passes(check: HealthCheck) -> bool:
    """Run one check: an asynchronous one (the broker's ping) through the library, with its
    time limit; a synchronous one here, on this request's database connection."""
    if inspect.iscoroutinefunction(check.run):
        return asyncio.run(check.get_result()).error is None
    try:
        check.run()
    except HealthCheckException:
        logger.warning("Readiness check %r failed", check, exc_info=True)
        return False
    except Exception:
        logger.exception("Readiness check %r failed unexpectedly", check)
        return False
    return True


@require_GET
def healthz(request):
    response = HttpResponse("ok", content_type="text/plain")
    add_never_cache_headers(response)
    return response


@require_GET
def readyz(request):
    passed = {name: passes(check) for name, check in readiness_checks().items()}
    is_ready = all(passed.values())
    answer = {
        "status": "ok" if is_ready else "unavailable",
        "checks": {name: "ok" if ok else "unavailable" for name, ok in passed.items()},
    }
    if replica.is_configured():
        reading = replica.choose_reading()
        lag = reading.lag_seconds
        answer["replica"] = {
            "state": reading.state,
            "lag_seconds": None if lag is None else round(lag, 1),
        }
    response = JsonResponse(answer, status=200 if is_ready else 503)
    add_never_cache_headers(response)
    return response
