"""Reads that can wait go to a real streaming replica, money never does, and a replica that is
behind or stopped sends them back to the primary without an error page.

The suite's PostgreSQL allows no replication, so this starts a primary and a streaming standby
of its own (``tests.clusters``), migrates and seeds the primary with the demo, and runs the
application in processes of its own (``scenarios.py`` beside this file) with DATABASE_URL on
the primary and DATABASE_REPLICA_URL on the standby. The standby's replay is paused to make a
row exist on the primary only: a report that does not show it read the replica.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import clusters

REPOSITORY = Path(__file__).resolve().parents[2]
DATABASE = "commissary"


def _environment(primary, standby, data_dir: Path) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "DATABASE_REPLICA_URL"}
        and not name.startswith(("CELERY", "DJANGO_"))
    }
    return {
        **inherited,
        "DATABASE_URL": primary.url(DATABASE),
        "DATABASE_REPLICA_URL": standby.url(DATABASE),
        "COMMISSARY_DATA_DIR": str(data_dir),
        # This checkout's code, whichever checkout the environment's install points at.
        "PYTHONPATH": str(REPOSITORY),
        "PAYMENTS_SANDBOX": "true",
        # The test client's host, and static files without a collected manifest.
        "DEBUG": "true",
        "ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "WARNING",
    }


def _run(arguments: list[str], environment: dict[str, str]) -> str:
    finished = subprocess.run(  # noqa: S603 - our own programs, fixed arguments
        [sys.executable, *arguments],
        cwd=REPOSITORY,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, f"{arguments} failed:\n{finished.stdout}\n{finished.stderr}"
    return finished.stdout


def _scenario(name: str, environment) -> dict:
    output = _run(["tests/replica/scenarios.py", name], environment)
    seen = json.loads(output.strip().splitlines()[-1])
    assert seen["errors"] == {}
    return seen


@pytest.fixture(scope="module")
def cluster_pair(tmp_path_factory):
    bin_dir = clusters.require_binaries()
    with (
        clusters.scratch_dir() as root,
        clusters.pair(bin_dir, root, fsync="off", full_page_writes="off") as (primary, standby),
    ):
        primary.query(f"CREATE DATABASE {DATABASE}")
        environment = _environment(primary, standby, tmp_path_factory.mktemp("replica-app"))
        _run(["manage.py", "migrate", "--noinput"], environment)
        _run(["manage.py", "seed_demo", "--inmates", "3", "--seed", "replica"], environment)
        clusters.replay_caught_up(primary, standby)
        yield primary, standby, environment


@pytest.fixture(scope="module")
def running(cluster_pair) -> dict:
    _primary, _standby, environment = cluster_pair
    return _scenario("running", environment)


@pytest.fixture(scope="module")
def stopped(cluster_pair, running) -> dict:
    _primary, standby, environment = cluster_pair
    standby.stop("immediate")
    return _scenario("stopped", environment)


def test_reports_read_the_replica_and_show_what_it_has_replayed(running):
    reports = running["reports"]
    assert reports["before"]["status"] == 200
    assert reports["reference"]  # credited on the primary while the replica's replay paused
    # Paused: the report read the replica, which had not replayed the deposit yet.
    paused = reports["while_paused"]
    assert paused["status"] == 200
    assert paused["body"] == reports["before"]["body"]
    assert paused["replica_ledger_reads"] > 0
    assert paused["primary_ledger_reads"] == 0
    # Replayed: the same report shows it (7,700 fen is 77.00 yuan on its day's row).
    after = reports["after"]
    assert after["body"] != reports["before"]["body"]
    assert after["replica_ledger_reads"] > 0
    assert after["primary_ledger_reads"] == 0
    # The admin's CSV export of the deposits, likewise.
    export_paused, export_after = reports["export_paused"], reports["export_after"]
    assert export_paused["status"] == export_after["status"] == 200
    assert reports["reference"] not in export_paused["body"]
    assert reports["reference"] in export_after["body"]
    assert export_paused["replica_ledger_reads"] > 0
    assert export_paused["primary_ledger_reads"] == 0
    dashboard = reports["dashboard_paused"]
    assert dashboard["status"] == 200
    assert 'class="replica replica-in-use"' in dashboard["body"]
    assert dashboard["replica_ledger_reads"] > 0
    assert dashboard["primary_ledger_reads"] == 0


def test_money_is_decided_on_the_primary_while_the_replica_lags(running):
    money = running["money_while_replay_paused"]
    # The replica had not replayed the deposit when the order was placed; the balance is the
    # primary's: the deposit less the order.
    assert money["spendable_moved_fen"] == money["expected_fen"]
    assert money["replica_ledger_reads"] == 0


def test_a_replica_behind_the_limit_sends_reads_to_the_primary_and_says_so(running):
    lagging = running["lagging"]
    for page in (lagging["dashboard"], lagging["report"]):
        assert page["status"] == 200
        assert page["replica_ledger_reads"] == 0
        assert page["primary_ledger_reads"] > 0
    assert 'class="replica replica-behind"' in lagging["dashboard"]["body"]
    assert any("behind" in message for message in lagging["logged"])
    readyz = lagging["readyz"]
    assert readyz["status"] == "ok"  # the replica never decides readiness
    assert readyz["replica"]["state"] == "behind"
    assert readyz["replica"]["lag_seconds"] > 1
    caught_up = running["caught_up_readyz"]["replica"]
    assert caught_up["state"] == "in_use"
    assert caught_up["lag_seconds"] < 5


def test_reconciliation_reports_only_what_the_primary_confirms(running):
    reconciliation = running["reconciliation"]
    assert reconciliation["both_see_it"] == ["cached_balance_mismatch"]
    assert reconciliation["only_the_replica_sees_it"] == []
    assert reconciliation["clean"] == []


def test_a_stopped_replica_degrades_to_the_primary_without_an_error_page(stopped):
    seen = stopped["stopped"]
    assert seen["dashboard"]["status"] == 200
    assert 'class="replica replica-unavailable"' in seen["dashboard"]["body"]
    assert seen["dashboard"]["primary_ledger_reads"] > 0
    report = seen["report"]
    assert report["status"] == 200
    assert report["primary_ledger_reads"] > 0
    assert seen["readyz"]["status"] == "ok"
    assert seen["readyz"]["replica"] == {"state": "unavailable", "lag_seconds": None}
    assert seen["money"]["spendable_moved_fen"] == seen["money"]["expected_fen"]
    assert seen["reconciliation"] == []
    assert any("does not answer" in message for message in seen["logged"])


def test_readyz_names_no_host_port_or_version(running, stopped):
    for answer in (running["caught_up_readyz"], stopped["stopped"]["readyz"]):
        text = json.dumps(answer).lower()
        for secret in ("127.0.0.1", "postgres", "version", "password", "replica_url"):
            assert secret not in text
