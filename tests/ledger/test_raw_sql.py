"""Raw SQL in the batch work goes through ``ledger.sql``: parameters are sent as the ORM would
send them and instants come back aware (on SQLite they are naive UTC text; the SQLite job in
``tests/sqlite/`` runs the batch work there)."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ledger import sql

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_an_instant_read_back_as_text_or_naive_is_utc():
    utc = dt.datetime(2026, 1, 31, 16, 0, tzinfo=dt.UTC)
    assert sql.instant("2026-01-31 16:00:00") == utc
    assert sql.instant(dt.datetime(2026, 1, 31, 16, 0)) == utc
    assert sql.instant(dt.datetime(2026, 2, 1, 0, 0, tzinfo=SHANGHAI)) == utc
    assert sql.instant(None) is None


def test_the_cursor_takes_positional_and_named_instants_and_gives_them_back_aware():
    month_start = dt.datetime(2026, 2, 1, tzinfo=SHANGHAI)  # 2026-01-31 16:00 UTC
    with sql.cursor() as cursor:
        cursor.execute(
            "SELECT %s::timestamptz < %s::timestamptz",
            [
                month_start,
                dt.datetime(2026, 1, 31, 16, 30, tzinfo=dt.UTC),
            ],
        )
        assert cursor.fetchone() == (True,)
        cursor.execute("SELECT %(start)s::timestamptz", {"start": month_start})
        (read_back,) = cursor.fetchone()
    assert read_back == month_start and read_back.tzinfo is not None
