"""Small scenario helpers shared by the ledger tests."""

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from ledger import services
from ledger.locks import lock_inmate_accounts

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


def post_purchase(
    inmate_id: int,
    amount_fen: int,
    *,
    idempotency_key: str | None = None,
    idempotency_scope: str = "kiosk:1",
    memo: str = "",
    now: dt.datetime | None = None,
):
    """The ledger's purchase posting as a kiosk order runs it: the inmate's accounts locked,
    then ``post_purchase`` in the same transaction. Returns the purchase's transaction. For
    tests of the ledger's money; it answers no replay (``place_order`` does: see
    ``kiosk_order``)."""
    with transaction.atomic(), connection.cursor() as cursor:
        locked = lock_inmate_accounts(cursor, by="inmate", key=inmate_id)
        return services.post_purchase(
            cursor,
            locked=locked,
            amount_fen=amount_fen,
            idempotency_scope=idempotency_scope,
            idempotency_key=idempotency_key or key("purchase"),
            request_hash=services.purchase_request_hash(
                inmate_id=inmate_id, amount_fen=amount_fen, memo=memo
            ),
            memo=memo,
            now=now or timezone.now(),
        )


def kiosk_of(facility):
    """The facility's kiosk (registered on first use)."""
    from facilities import services as facility_services
    from facilities.models import KioskDevice

    device = KioskDevice.objects.filter(facility=facility, is_active=True).order_by("id").first()
    return device or facility_services.register_kiosk_device(facility=facility, name="Kiosk")[0]


def product_priced(facility, price_fen: int):
    """The facility's product at this price, in stock without limit (made on first use), so a
    kiosk order of one unit costs exactly ``price_fen``."""
    from catalog.models import Category, FacilityProduct, Product

    sku = f"PRICED-{price_fen}"
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        category, _created = Category.objects.get_or_create(
            code="food", defaults={"name_zh": "食品", "name_en": "Food"}
        )
        product = Product.objects.create(
            sku=sku,
            name_zh=f"商品 {price_fen}",
            name_en=f"Goods at {price_fen} fen",
            category=category,
            price_fen=price_fen,
        )
    FacilityProduct.objects.get_or_create(
        facility=facility, product=product, defaults={"stock": 10**9}
    )
    return product


def kiosk_order(
    inmate,
    amount_fen: int,
    *,
    idempotency_key: str | None = None,
    device=None,
    now: dt.datetime | None = None,
):
    """A purchase as a kiosk makes it, through ``catalog.services.place_order``: one unit of
    the facility's product priced ``amount_fen``, from the facility's kiosk (or ``device``).
    Returns the order (its debit is ``order.purchase``). Threads share the product and kiosk:
    make them first (``kiosk_of``, ``product_priced``)."""
    from catalog import services as catalog_services

    return catalog_services.place_order(
        inmate_id=inmate.pk,
        device_id=(device or kiosk_of(inmate.facility)).pk,
        items=[{"product_id": product_priced(inmate.facility, amount_fen).pk, "quantity": 1}],
        idempotency_key=idempotency_key or key("order"),
        now=now,
    )


def archived_month(
    month: dt.date,
    *,
    entry_count: int = 0,
    has_day_totals: bool = True,
    detached_at: dt.datetime | None = None,
    detached_by: str = "",
):
    """An archived month's row as a detach writes it (with the clean reconciliation run it
    needs), without detaching anything: for pages and reports about archived months."""
    from ledger import partitions
    from ledger.models import ArchivedJournalMonth, ScheduledRun

    run = ScheduledRun.objects.create(
        kind=ScheduledRun.Kind.RECONCILIATION,
        status=ScheduledRun.Status.SUCCEEDED,
        started_at=timezone.now(),
    )
    return ArchivedJournalMonth.objects.create(
        month=month,
        starts_at=partitions.month_start(month),
        ends_at=partitions.month_start(partitions.add_months(month, 1)),
        table_name=partitions.partition_name(month),
        entry_count=entry_count,
        reconciliation_run=run,
        detached_at=detached_at or timezone.now(),
        detached_by=detached_by,
        has_day_totals=has_day_totals,
    )
