"""``bench/scale.py --replica-url`` measures against a standby on another machine only once it
has checked that the URL really is a standby of the primary given: in recovery, with the
primary's system identifier, on the same database; anything else stops the benchmark with the
reason. Checked here against the tests' own primary and streaming standby (``tests/clusters``)
and against the suite's own server, which is a cluster of its own."""

import importlib.util
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from tests import clusters

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def scale_bench():
    spec = importlib.util.spec_from_file_location("scale_bench", ROOT / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pair():
    bin_dir = clusters.require_binaries()
    with (
        clusters.scratch_dir() as root,
        clusters.pair(bin_dir, root, fsync="off", full_page_writes="off") as (primary, standby),
    ):
        primary.query("CREATE DATABASE bench")
        clusters.replay_caught_up(primary, standby)
        yield primary, standby


def _suite_server_url(database: str) -> str:
    """The suite's own PostgreSQL server (another cluster than the pair's)."""
    configured = settings.DATABASES["default"]
    password = configured["PASSWORD"]
    user = quote(configured["USER"] or "postgres") + (f":{quote(password)}" if password else "")
    host = configured["HOST"] or "127.0.0.1"
    return f"postgres://{user}@{host}:{configured['PORT'] or 5432}/{database}"


def test_a_standby_of_the_primary_is_accepted(scale_bench, pair):
    primary, standby = pair
    assert scale_bench.check_standby(primary.url("bench"), standby.url("bench")) is None
    assert scale_bench.checked(primary.url("bench"), standby.url("bench")) == (
        primary.url("bench"),
        standby.url("bench"),
    )


def test_a_primary_given_as_the_replica_is_refused(scale_bench, pair):
    primary, _standby = pair
    with pytest.raises(scale_bench.NotAStandby, match="is not in recovery: it is a primary"):
        scale_bench.check_standby(primary.url("bench"), primary.url("bench"))
    # The benchmark stops, saying why, before it writes anything.
    with pytest.raises(SystemExit, match="refused: .* is not in recovery"):
        scale_bench.checked(primary.url("bench"), primary.url("bench"))


def test_a_standby_given_as_the_primary_is_refused(scale_bench, pair):
    _primary, standby = pair
    with pytest.raises(scale_bench.NotAStandby, match="is in recovery: it is a standby"):
        scale_bench.check_standby(standby.url("bench"), standby.url("bench"))


def test_a_standby_of_another_cluster_is_refused(scale_bench, pair):
    _primary, standby = pair
    with pytest.raises(scale_bench.NotAStandby, match="is a standby of another cluster"):
        scale_bench.check_standby(_suite_server_url("postgres"), standby.url("postgres"))


def test_another_database_on_the_standby_is_refused(scale_bench, pair):
    primary, standby = pair
    with pytest.raises(scale_bench.NotAStandby, match="names database postgres, the primary"):
        scale_bench.check_standby(primary.url("bench"), standby.url("postgres"))


def test_a_server_that_does_not_answer_is_refused_and_no_password_is_shown(scale_bench):
    url = f"postgres://bench:secret@127.0.0.1:{clusters.free_port()}/bench"
    with pytest.raises(scale_bench.NotAStandby, match="does not answer") as refused:
        scale_bench.check_standby(url, url)
    assert "secret" not in str(refused.value)
    assert "bench:***@127.0.0.1" in str(refused.value)


def test_split_cpus_binds_each_cluster_and_the_backends_it_forks_later(scale_bench, pair):
    """``--split-cpus``: the two halves do not overlap, and every process of a cluster, those
    running when it is bound and a backend forked afterwards, runs on its half only."""
    primary, standby = pair
    ours = os.sched_getaffinity(0)
    if len(ours) < 2:
        pytest.skip("one CPU: nothing to split")
    first, second = scale_bench.halves(ours)
    assert first and second and not first & second and first | second == ours
    try:
        scale_bench.bind(scale_bench.cluster_processes(primary.data), first)
        scale_bench.bind(scale_bench.cluster_processes(standby.data), second)
        for cluster, half in ((primary, first), (standby, second)):
            processes = scale_bench.cluster_processes(cluster.data)
            assert len(processes) > 2  # the postmaster and its helpers (checkpointer, …)
            assert {frozenset(os.sched_getaffinity(pid)) for pid in processes} == {half}
            with cluster.connect("bench") as connection:  # a backend forked after the binding
                (backend,) = connection.execute("SELECT pg_backend_pid()").fetchone()
                assert os.sched_getaffinity(backend) == half
    finally:
        for cluster in (primary, standby):
            scale_bench.bind(scale_bench.cluster_processes(cluster.data), frozenset(ours))


def test_halves_refuse_one_cpu(scale_bench):
    with pytest.raises(SystemExit, match="at least 2 CPUs"):
        scale_bench.halves({0})
