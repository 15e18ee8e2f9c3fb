"""Writes to facilities' own rows that another app makes inside its own transaction, under the
locks it already holds: the ledger changes a facility's caps together with every inmate
account's. Facilities owns the table; nothing else writes it by SQL of its own."""

from .models import Facility


def set_facility_caps(*, facility_id: int, monthly_cap_fen: int, balance_cap_fen: int) -> None:
    """Store the facility's caps. The caller holds the facility row's policy lock
    (``ledger.locks.lock_facility_for_policy``) and has checked the new caps."""
    Facility.objects.filter(pk=facility_id).update(
        monthly_cap_fen=monthly_cap_fen, balance_cap_fen=balance_cap_fen
    )
