"""Prices: staff file a price change (cost, price, reason) for a product at a facility; the
history is append-only (``PriceChange``), and what an order pays is the change in force at its
instant (read by the order's own statement, ``placing._place``). Every path that starts a
facility selling a product (a new product's offers, ``file_first_prices``; an existing one's,
``start_selling``) files version 1 of that facility's history with the cost, so no facility
sells a product without one.

The rules a change must pass, under the facility product's row lock (so two changes of one
product are decided one after the other):
- the facility's markup cap, if it has one: price ≤ cost × (1 + cap), refused at the boundary
  plus one fen with the highest allowed price in the message;
- a rise (a price above the one in force when filed) takes effect at 00:00 of a facility-local
  date at least ``price_rise_notice_days`` ahead (0: today, i.e. at once); a cut or an
  unchanged price, at once.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commissary import errors
from commissary.money import format_fen
from facilities.models import Facility, local_date

from ..models import MAX_PRICE_FEN, FacilityProduct, PriceChange, Product


def price_in_force(*, facility_product: FacilityProduct, at: dt.datetime) -> tuple[int, int | None]:
    """(price fen, price change id) in force at ``at``: the latest change not after it, else
    the product's list price (and no change)."""
    change = (
        PriceChange.objects.filter(facility_product=facility_product, effective_from__lte=at)
        .order_by("-effective_from", "-id")
        .values_list("price_fen", "id")
        .first()
    )
    if change is not None:
        return change
    return facility_product.product.price_fen, None


def highest_price_fen(*, cost_fen: int, markup_cap_bp: int) -> int:
    """The highest price the cap allows for ``cost_fen`` (rounded down to the fen)."""
    return cost_fen * (10_000 + markup_cap_bp) // 10_000


def local_midnight(day: dt.date, timezone_name: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(timezone_name))


def refuse_over_markup_cap(*, facility: Facility, cost_fen: int, price_fen: int) -> None:
    """Raise ``MarkupCapExceeded`` when ``price_fen`` is above the facility's markup cap over
    ``cost_fen`` (no cap: nothing is refused)."""
    cap_bp = facility.markup_cap_bp
    if cap_bp is None or price_fen <= highest_price_fen(cost_fen=cost_fen, markup_cap_bp=cap_bp):
        return
    raise errors.MarkupCapExceeded(
        _(
            "A price of %(price)s is more than %(cap)s%% over the cost of %(cost)s "
            "(the facility's markup cap): at most %(most)s."
        )
        % {
            "price": format_fen(price_fen, facility.currency),
            "cap": f"{cap_bp / 100:g}",
            "cost": format_fen(cost_fen, facility.currency),
            "most": format_fen(
                highest_price_fen(cost_fen=cost_fen, markup_cap_bp=cap_bp), facility.currency
            ),
        }
    )


def _checked_fen(value, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_PRICE_FEN:
        raise errors.ValidationFailed(
            _("The %(what)s is an amount above zero and at most %(most)s.")
            % {"what": label, "most": format_fen(MAX_PRICE_FEN)}
        )
    return value


def file_price_change(
    *,
    facility_product_id: int,
    cost_fen: int,
    price_fen: int,
    reason: str,
    staff_id: int | None,
    effective_on: dt.date | None = None,
    now: dt.datetime | None = None,
) -> PriceChange:
    """File a new cost and price for a product at a facility, with a reason.

    A cut (or the same price) takes effect at once; a rise on ``effective_on`` (00:00 facility
    time), which defaults to, and may not be before, today plus the facility's notice days.
    Refused with ``MarkupCapExceeded`` above the facility's markup cap."""
    cost_fen = _checked_fen(cost_fen, _("cost"))
    price_fen = _checked_fen(price_fen, _("price"))
    if not isinstance(reason, str) or not reason.strip():
        raise errors.ValidationFailed(_("A reason is required."))
    now = now or timezone.now()
    with transaction.atomic():
        offer = (
            FacilityProduct.objects.select_for_update(no_key=True)
            .select_related("product")
            .filter(pk=facility_product_id)
            .first()
        )
        if offer is None:
            raise errors.ProductNotFound()
        facility = Facility.objects.get(pk=offer.facility_id)
        refuse_over_markup_cap(facility=facility, cost_fen=cost_fen, price_fen=price_fen)
        current_fen, _current_id = price_in_force(facility_product=offer, at=now)
        today = local_date(now, facility.timezone)
        if price_fen > current_fen:
            earliest = today + dt.timedelta(days=facility.price_rise_notice_days)
            effective_on = effective_on or earliest
            if effective_on < earliest:
                message = _("A price rise takes effect on %(date)s at the earliest.")
                raise errors.PriceRiseTooSoon(message % {"date": earliest.isoformat()})
            # Never before the moment it is filed: a rise "today" (no notice) starts now, so a
            # cut filed earlier today is not jumped over in the history's order.
            effective_from = max(local_midnight(effective_on, facility.timezone), now)
        else:
            effective_on, effective_from = today, now
        return PriceChange.objects.create(
            facility_id=offer.facility_id,
            facility_product=offer,
            cost_fen=cost_fen,
            price_fen=price_fen,
            previous_price_fen=current_fen,
            effective_from=effective_from,
            effective_on=effective_on,
            reason=reason.strip()[:200],
            created_by_id=staff_id,
            created_at=now,
        )


def file_first_prices(
    *, product_id: int, cost_fen: int, reason: str, staff_id: int | None
) -> list[PriceChange]:
    """A new product's list price filed, with its cost, as the first version of the price
    history at every facility it is offered at (``file_price_change``'s rules: the markup cap
    refuses it, all or nothing). The price is the list price, so it is in force at once."""
    reason = reason.strip() or _("First price of a new product")
    with transaction.atomic():
        product = Product.objects.get(pk=product_id)
        return [
            file_price_change(
                facility_product_id=offer_id,
                cost_fen=cost_fen,
                price_fen=product.price_fen,
                reason=reason,
                staff_id=staff_id,
            )
            for offer_id in FacilityProduct.objects.filter(product_id=product_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        ]


def start_selling(
    *,
    facility_id: int,
    product_id: int,
    cost_fen: int,
    staff_id: int | None,
    price_fen: int | None = None,
    reason: str = "",
    stock: int = 0,
    is_available: bool = True,
    now: dt.datetime | None = None,
) -> FacilityProduct:
    """A facility starts selling a product: its offer (stock, on sale) and, in the same
    transaction, version 1 of the facility's price history for it, with the cost, in force at
    once (what the facility's orders link to from the first). The price is the product's list
    price unless one is given; the facility's markup cap refuses it (nothing is written then).
    Nothing was sold there before, so a price above the list price is no rise that waits for
    notice, and the version's price before is its own price (as for a new product's first)."""
    cost_fen = _checked_fen(cost_fen, _("cost"))
    if price_fen is not None:
        price_fen = _checked_fen(price_fen, _("price"))
    if isinstance(stock, bool) or not isinstance(stock, int) or stock < 0:
        raise errors.ValidationFailed(_("Stock is a whole number, zero or more."))
    now = now or timezone.now()
    with transaction.atomic():
        # The list price as ``change_list_price`` leaves it (the same row lock).
        product = Product.objects.select_for_update(no_key=True).filter(pk=product_id).first()
        facility = Facility.objects.filter(pk=facility_id).first()
        if product is None:
            raise errors.ProductNotFound()
        if facility is None:
            raise errors.FacilityNotFound()
        if FacilityProduct.objects.filter(facility=facility, product=product).exists():
            raise errors.ValidationFailed(_("The facility already sells this product."))
        price_fen = product.price_fen if price_fen is None else price_fen
        refuse_over_markup_cap(facility=facility, cost_fen=cost_fen, price_fen=price_fen)
        offer = FacilityProduct.objects.create(
            facility=facility, product=product, stock=stock, is_available=is_available
        )
        PriceChange.objects.create(
            facility=facility,
            facility_product=offer,
            cost_fen=cost_fen,
            price_fen=price_fen,
            previous_price_fen=price_fen,
            effective_from=now,
            effective_on=local_date(now, facility.timezone),
            reason=(reason.strip() or _("First price at this facility"))[:200],
            created_by_id=staff_id,
            created_at=now,
        )
    return offer


def offers_at_list_price(*, product_id: int):
    """The facilities' offers of a product that are sold at its list price: those with no
    price change of their own (a change, even a future one, makes the facility's price its
    own)."""
    return (
        FacilityProduct.objects.filter(product_id=product_id)
        .exclude(pk__in=PriceChange.objects.values("facility_product_id"))
        .select_related("facility")
        .order_by("pk")
    )


def check_list_price_change(*, product_id: int, cost_fen: int, price_fen: int) -> None:
    """Refuse, before anything is written, a new list price that some facility selling the
    product at its list price could not file as a price change (its markup cap). The same
    rules are applied again under the locks by ``change_list_price``."""
    cost_fen = _checked_fen(cost_fen, _("cost"))
    price_fen = _checked_fen(price_fen, _("price"))
    for offer in offers_at_list_price(product_id=product_id):
        refuse_over_markup_cap(facility=offer.facility, cost_fen=cost_fen, price_fen=price_fen)


def change_list_price(
    *,
    product_id: int,
    cost_fen: int,
    price_fen: int,
    reason: str,
    staff_id: int | None,
    now: dt.datetime | None = None,
) -> list[PriceChange]:
    """A new list price for a product, as price changes: at every facility that sells it at
    its list price, a ``PriceChange`` is filed with ``file_price_change``'s rules (a reason,
    the markup cap, a rise only after the facility's notice, a cut at once), then the product's
    list price is set (what a facility that starts selling it later starts from). Facilities
    with prices of their own keep them. All or nothing: one facility's refusal changes nothing.

    A rise that waits for its notice at a facility with no history would leave the list price
    (already the new one) in force there until then; so the price in force is first filed
    there, unchanged, as the facility's own (same cost and reason), and the rise after it."""
    price_fen = _checked_fen(price_fen, _("price"))
    now = now or timezone.now()
    with transaction.atomic():
        product = Product.objects.select_for_update(no_key=True).get(pk=product_id)
        if price_fen == product.price_fen:
            return []
        offers = offers_at_list_price(product_id=product_id).select_for_update(
            no_key=True, of=("self",)
        )
        filed = []
        for offer in offers:
            prices = [price_fen]
            if price_fen > product.price_fen and offer.facility.price_rise_notice_days:
                prices.insert(0, product.price_fen)
            filed += [
                file_price_change(
                    facility_product_id=offer.pk,
                    cost_fen=cost_fen,
                    price_fen=filed_fen,
                    reason=reason,
                    staff_id=staff_id,
                    now=now,
                )
                for filed_fen in prices
            ]
        product.price_fen = price_fen
        product.save(update_fields=["price_fen"])
    return filed
