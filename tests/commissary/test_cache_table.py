"""The database cache's table comes with ``migrate``: without ``REDIS_URL`` the throttles and
sign-in limits use it, and every kiosk sign-in answered 500 while it was missing."""

import importlib

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from django.test import override_settings

from facilities import services as facility_services
from tests.factories import FacilityFactory, InmateFactory

create_tables = importlib.import_module(
    "commissary.migrations.0001_create_database_cache_table"
).create_database_cache_tables

DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": settings.DATABASE_CACHE_TABLE,
    }
}


def _tables():
    return connection.introspection.table_names()


@pytest.mark.django_db
def test_migrate_makes_the_cache_table_even_when_the_cache_is_redis():
    assert settings.CACHES["default"]["BACKEND"] != DATABASE_CACHE["default"]["BACKEND"]
    assert settings.DATABASE_CACHE_TABLE in _tables()


@pytest.mark.django_db
@override_settings(CACHES=DATABASE_CACHE)
def test_a_kiosk_signs_in_with_the_database_cache(client):
    assert isinstance(caches["default"], DatabaseCache)
    facility = FacilityFactory()
    inmate = InmateFactory(facility=facility)
    _device, key = facility_services.register_kiosk_device(facility=facility, name="K")
    answer = client.post(
        "/api/kiosk/v1/sessions",
        {"inmate_number": inmate.inmate_number, "pin": "1234"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Kiosk {key}",
    )
    assert answer.status_code == 201, answer.content
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {settings.DATABASE_CACHE_TABLE}")  # noqa: S608 - a setting
        assert cursor.fetchone()[0] == 2  # the device's and the sign-in throttle's windows


@pytest.mark.django_db
def test_the_migration_step_leaves_an_existing_table_and_makes_a_missing_one():
    with connection.schema_editor() as editor:
        create_tables(None, editor)  # already there: left alone
    assert settings.DATABASE_CACHE_TABLE in _tables()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {settings.DATABASE_CACHE_TABLE}")
    assert settings.DATABASE_CACHE_TABLE not in _tables()
    with connection.schema_editor() as editor:
        create_tables(None, editor)
    assert settings.DATABASE_CACHE_TABLE in _tables()
