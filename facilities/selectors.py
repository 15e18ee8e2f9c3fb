"""Reads of facility policy that more than one caller needs.

The effective spending limit of a grade is decided here, once: the grade's festival limit when
the instant falls, in the facility's timezone, in one of the facility's festival months and the
grade has one; else its usual limit. ``spending_limit_for`` is that rule for Python callers (the
kiosk balance); ``SPENDING_LIMIT_SQL`` is the same rule as a SQL expression for the kiosk order's
single hand-written statement (``catalog.services``), bound to ``festival_month_key``. The two
are tested against each other through the order and balance tests.
"""

import datetime as dt

from .models import FestivalMonth, Grade, local_month


def festival_month_key(instant: dt.datetime, timezone_name: str) -> dt.date:
    """The ``FestivalMonth.month`` that would make ``instant`` a festival instant: the first
    day of its month in the facility's timezone. For a weekly grade this is the order's own
    local date's month, so a week that straddles two months takes the festival limit on the
    days that fall in the festival month (and counts the whole week's spending against it)."""
    return local_month(instant, timezone_name)


def is_festival_month(*, facility_id: int, instant: dt.datetime, timezone_name: str) -> bool:
    return FestivalMonth.objects.filter(
        facility_id=facility_id, month=festival_month_key(instant, timezone_name)
    ).exists()


def spending_limit_for(grade: Grade | None, instant: dt.datetime, timezone_name: str) -> int | None:
    """The spending limit (fen) that holds for an order of an inmate of ``grade`` at
    ``instant``; None: no limit. A festival limit replaces the usual one for instants in one of
    the grade's facility's festival months; a grade without one keeps its usual limit then."""
    if grade is None:
        return None
    if grade.festival_spending_limit_fen is not None and is_festival_month(
        facility_id=grade.facility_id, instant=instant, timezone_name=timezone_name
    ):
        return grade.festival_spending_limit_fen
    return grade.spending_limit_fen


# ``spending_limit_for`` in SQL, for a statement that reads the grade as ``g`` and the inmate
# as ``i``; its one parameter is ``festival_month_key(instant, facility timezone)``.
SPENDING_LIMIT_SQL = (
    "CASE WHEN g.festival_spending_limit_fen IS NOT NULL AND EXISTS (SELECT 1 FROM "
    "facilities_festivalmonth fm WHERE fm.facility_id = i.facility_id AND fm.month = %s) "
    "THEN g.festival_spending_limit_fen ELSE g.spending_limit_fen END"
)


def grade_names_at(*, facility_id: int, names: set[str]) -> set[str]:
    """Which of ``names`` are grades of the facility: the grades a transfer there keeps (an
    inmate takes the new facility's grade of the same name, else none)."""
    return set(
        Grade.objects.filter(facility_id=facility_id, name__in=names).values_list("name", flat=True)
    )
