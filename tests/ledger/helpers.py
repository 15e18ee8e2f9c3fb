"""Small scenario helpers shared by the ledger tests."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from ledger import services

_keys = itertools.count()
SHANGHAI = ZoneInfo("Asia/Shanghai")


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_keys)}"


def deposit(inmate, amount_fen: int, *, now: dt.datetime | None = None):
    """A deposit reserved and credited at ``now``: what a paid family deposit does."""
    reserved = services.reserve_deposit(
        idempotency_scope="depositor:1",
        inmate_id=inmate.pk,
        amount_fen=amount_fen,
        idempotency_key=key("deposit"),
        now=now,
    )
    return services.credit_deposit(deposit_id=reserved.pk, now=now)


def month_start(year: int, month: int) -> dt.datetime:
    """Noon on the 1st of a month in Shanghai: a safe instant inside that facility month."""
    return dt.datetime(year, month, 1, 12, tzinfo=SHANGHAI)


def staff_at(facility, *, may_approve: bool = False):
    """An active staff member assigned to the facility (a trust officer with ``may_approve``)."""
    from tests.factories import StaffFactory

    return StaffFactory(facilities=[facility], may_approve=may_approve)


def set_frozen(inmate, is_frozen: bool, *, staff=None):
    """Freeze or unfreeze through the service, as an assigned staff member, with a reason."""
    staff = staff or staff_at(inmate.facility)
    return services.set_account_frozen(
        inmate_id=inmate.pk,
        is_frozen=is_frozen,
        reason="test",
        staff_id=staff.pk,
        idempotency_key=key("freeze"),
    )
