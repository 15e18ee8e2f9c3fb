"""The router's rule, without a replica server (tests/replica/ runs a real one): reads go to
the replica only inside a block of reads that can wait that chose it, and never inside a
transaction on the primary; writes and migrations never."""

import pytest
from django.db import DEFAULT_DB_ALIAS, transaction

from commissary import replica
from ledger.models import Entry
from tests.factories import FacilityFactory


@pytest.fixture
def replica_chosen(monkeypatch):
    """Blocks choose the replica, as they do when it answers within the limit."""
    monkeypatch.setattr(replica, "is_configured", lambda: True)
    monkeypatch.setattr(
        replica, "choose_reading", lambda: replica.Reading(replica.REPLICA_DB_ALIAS, "in_use", 0.2)
    )


def test_without_a_replica_a_block_reads_the_primary():
    with replica.reads_that_can_wait() as reading:
        assert reading == replica.PRIMARY
        assert replica.ReplicaRouter().db_for_read(Entry) == DEFAULT_DB_ALIAS


@pytest.mark.django_db(transaction=True)
def test_only_reads_inside_a_block_and_outside_a_transaction_go_to_the_replica(replica_chosen):
    router = replica.ReplicaRouter()
    assert router.db_for_read(Entry) == DEFAULT_DB_ALIAS
    with replica.reads_that_can_wait():
        assert router.db_for_read(Entry) == replica.REPLICA_DB_ALIAS
        assert router.db_for_write(Entry) == DEFAULT_DB_ALIAS
        with transaction.atomic():
            assert router.db_for_read(Entry) == DEFAULT_DB_ALIAS
        assert replica.alias_for_reads_that_can_wait() == replica.REPLICA_DB_ALIAS
    assert router.db_for_read(Entry) == DEFAULT_DB_ALIAS
    assert not router.allow_migrate(replica.REPLICA_DB_ALIAS, "ledger")
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "ledger")


@pytest.mark.django_db
def test_a_dashboard_says_where_its_figures_were_read(admin_client, replica_chosen):
    FacilityFactory()
    response = admin_client.get("/admin/reports/dashboard/")
    assert response.status_code == 200
    assert b'class="replica replica-in-use"' in response.content


@pytest.mark.django_db
def test_a_dashboard_without_a_replica_says_nothing_of_one(admin_client):
    FacilityFactory()
    response = admin_client.get("/admin/reports/dashboard/")
    assert response.status_code == 200
    assert b'class="replica' not in response.content
