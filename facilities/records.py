"""Writes to facilities' own rows that another app makes inside its own transaction, under the
locks it already holds: the ledger changes a facility's caps together with every inmate
account's. Facilities owns the table; nothing else writes it by SQL of its own."""

from django.db.models import BigIntegerField, Case, F, Value, When

from .models import POLICY_CHANGE_FIELDS, Facility


def set_facility_caps(*, facility_id: int, monthly_cap_fen: int, balance_cap_fen: int) -> None:
    """Store the facility's caps. The caller holds the facility row's policy lock
    (``ledger.locks.lock_facility_for_policy``) and has checked the new caps. The approval
    threshold never exceeds the balance cap (a CHECK): a lower cap brings it down too, which
    only asks for a second person more often."""
    Facility.objects.filter(pk=facility_id).update(
        monthly_cap_fen=monthly_cap_fen,
        balance_cap_fen=balance_cap_fen,
        adjustment_approval_threshold_fen=Case(
            When(
                adjustment_approval_threshold_fen__gt=balance_cap_fen,
                then=Value(balance_cap_fen, output_field=BigIntegerField()),
            ),
            default=F("adjustment_approval_threshold_fen"),
        ),
    )


def set_facility_policy(*, facility_id: int, values: dict) -> Facility:
    """Store an approved change of the facility's money policy (``POLICY_CHANGE_FIELDS``).
    The caller (``ledger.services.approve_request``) holds the facility row's policy lock and
    has checked the values against ``policy_bound_errors``. Saved through the model, so the
    audit trail records the old and new values and who approved."""
    unknown = set(values) - set(POLICY_CHANGE_FIELDS)
    if unknown:
        raise ValueError(f"not policy fields: {sorted(unknown)}")
    facility = Facility.objects.get(pk=facility_id)
    for field, value in values.items():
        setattr(facility, field, value)
    facility.save(update_fields=list(values))
    return facility
