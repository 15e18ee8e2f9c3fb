"""Writing the demo's inmates and their money in bulk, a batch of inmates per transaction: the
inmate rows (this app's table) with COPY, then their accounts, periods, deposits and journal
through the ledger's own bulk path (``ledger.bulk.load_inmate_money``), which writes the rows
the services would. Guards the invariants by construction (see the package docstring)."""

import datetime as dt
import secrets
from collections.abc import Sequence

from django.db import connection

from ledger.bulk import (
    BulkRows,
    InmateMoney,
    LoadedDeposit,
    SystemAccounts,
    load_inmate_money,
)

from ..models import Facility, Inmate
from .plan import PROVIDER, InmatePlan, inmate_number, pin_slot


def system_accounts(facility: Facility) -> SystemAccounts:
    """The facility's system accounts the demo's deposits and purchases post against."""
    return SystemAccounts.of(facility, provider=PROVIDER)


def _write_batch(
    plans: Sequence[InmatePlan],
    *,
    facility: Facility,
    housing_unit_ids: Sequence[int],
    pin_hashes: Sequence[str],
    system: SystemAccounts,
    now: dt.datetime,
) -> None:
    """Insert the inmates of ``plans`` with their money: the rows intake and the services
    would write for them, in one go. Call inside one transaction."""
    with connection.cursor() as cursor:
        bulk = BulkRows(cursor)
        bulk.skip_ignore_lookups()
        inmate_ids = bulk.reserve_ids(Inmate, len(plans))
        money = []
        inmate_rows = []
        for plan, inmate_id in zip(plans, inmate_ids, strict=True):
            number = inmate_number(plan.index)
            inmate_rows.append(
                {
                    "id": inmate_id,
                    "facility_id": facility.pk,
                    "housing_unit_id": housing_unit_ids[(plan.index - 1) % len(housing_unit_ids)],
                    "inmate_number": number,
                    "surname": plan.surname,
                    "given_name": plan.given_name,
                    "status": Inmate.Status.ACTIVE,
                    "pin_hash": pin_hashes[pin_slot(plan.index)],
                    "card_token": secrets.token_urlsafe(24),
                    "admitted_at": plan.admitted_at,
                }
            )
            key = f"demo:{facility.code}:{number}"
            money.append(
                InmateMoney(
                    inmate_id=inmate_id,
                    deposits=[
                        LoadedDeposit(
                            key=f"{key}:deposit:{sequence}",
                            amount_fen=deposit.amount_fen,
                            fee_fen=deposit.fee_fen,
                            created_at=deposit.created_at,
                            credited_at=deposit.credited_at,
                        )
                        for sequence, deposit in enumerate(plan.deposits, start=1)
                    ],
                    # The demo's purchases are kiosk orders, placed afterwards through the
                    # catalog's services (catalog.demo.place_demo_orders).
                    purchases=[],
                )
            )
        bulk.insert(Inmate, inmate_rows)
        load_inmate_money(
            bulk, facility=facility, provider=PROVIDER, system=system, inmates=money, now=now
        )
