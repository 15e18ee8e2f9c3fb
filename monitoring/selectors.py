"""Reads of the monitoring records for the staff's reports."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db.models import Count, Q

from .models import Hold, RuleVersion


def rule_report(*, facility, first: dt.date, last: dt.date):
    """Each rule version of ``facility`` with the holds it fired on the facility's local days
    ``first`` to ``last``: rows of (rule id, version, kind label, note, active, hits,
    accepted, rejected, timed out, pending). A version that fired nothing is listed with
    zeros; a hold that several versions fired counts once under each."""
    tz = ZoneInfo(facility.timezone)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    in_period = Q(holds__created_at__gte=start, holds__created_at__lt=end)

    def counted(state=None):
        condition = in_period if state is None else in_period & Q(holds__state=state)
        return Count("holds", filter=condition)

    versions = (
        RuleVersion.objects.filter(rule__facility=facility)
        .annotate(
            hits=counted(),
            accepted=counted(Hold.State.ACCEPTED),
            rejected=counted(Hold.State.REJECTED),
            timed_out=counted(Hold.State.TIMED_OUT),
            pending=counted(Hold.State.PENDING),
        )
        .order_by("rule_id", "version")
    )
    return [
        (
            version.rule_id,
            version.version,
            version.get_kind_display(),
            (version.parameters or {}).get("note") or "",
            version.is_active,
            version.hits,
            version.accepted,
            version.rejected,
            version.timed_out,
            version.pending,
        )
        for version in versions
    ]
