"""The router's rule, without a replica server (tests/replica/ runs a real one): reads go to
the replica only inside a block of reads that can wait that chose it, and never inside a
transaction on the primary; writes and migrations never."""

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, transaction

from commissary import replica
from facilities.models import Facility
from ledger.models import Entry, Transaction
from tests.factories import FacilityFactory, InmateFactory
from tests.ledger.helpers import deposit


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
        with pytest.raises(replica.WriteInReadsThatCanWait):
            router.db_for_write(Entry)
        with transaction.atomic():
            assert router.db_for_read(Entry) == DEFAULT_DB_ALIAS
        assert replica.alias_for_reads_that_can_wait() == replica.REPLICA_DB_ALIAS
    assert router.db_for_read(Entry) == DEFAULT_DB_ALIAS
    assert router.db_for_write(Entry) == DEFAULT_DB_ALIAS
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


@pytest.mark.django_db
def test_a_block_refuses_every_orm_write_and_row_lock(replica_chosen):
    facility = FacilityFactory()
    with replica.reads_that_can_wait():
        with pytest.raises(replica.WriteInReadsThatCanWait, match="facilities.Facility"):
            FacilityFactory()
        with pytest.raises(replica.WriteInReadsThatCanWait):
            Facility.objects.filter(pk=facility.pk).update(name="Renamed")
        with pytest.raises(replica.WriteInReadsThatCanWait):
            facility.delete()
        with transaction.atomic(), pytest.raises(replica.WriteInReadsThatCanWait):
            list(Facility.objects.select_for_update().filter(pk=facility.pk))
    assert Facility.objects.get().name == facility.name
    FacilityFactory()  # after the block, writes go on as before


@pytest.mark.django_db
def test_a_money_service_called_in_a_block_is_refused_before_it_moves_money():
    """Even without a replica (the block reads on the primary): the mistake is refused
    wherever it is made, not only where a replica would make it read stale rows."""
    inmate = InmateFactory()
    with replica.reads_that_can_wait(), pytest.raises(replica.WriteInReadsThatCanWait):
        deposit(inmate, 10_000)
    assert not Transaction.objects.exists()
    deposit(inmate, 10_000)
    assert Transaction.objects.count() == 1


@pytest.mark.django_db
def test_a_block_refuses_raw_statements_that_write_or_lock_and_allows_reads():
    facility = FacilityFactory()
    table = Facility._meta.db_table
    with replica.reads_that_can_wait(), connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {table} WHERE id = %s", [facility.pk])  # noqa: S608
        assert cursor.fetchone() == (facility.name,)
        for statement in (
            f"UPDATE {table} SET name = 'x' WHERE id = %s",  # noqa: S608
            f"  delete from {table} WHERE id = %s",  # noqa: S608
            f"SELECT id FROM {table} WHERE id = %s FOR NO KEY UPDATE",  # noqa: S608
            f"SELECT id FROM {table} WHERE id = %s FOR SHARE",  # noqa: S608
        ):
            with pytest.raises(replica.WriteInReadsThatCanWait):
                cursor.execute(statement, [facility.pk])
    assert Facility.objects.get().name == facility.name
