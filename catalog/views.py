"""The public price list of a facility (``/prices/<facility code>/``): signed out, in Chinese
and English, every product on sale with its unit, the price in force, the date of its last
change and a rise already announced; each product's price history; the same list as CSV
(``?format=csv``, through ``commissary.spreadsheets``). A facility may turn it off
(``Facility.publishes_prices``), and then it answers 404 like an unknown code. It never shows
stock, sales or anything about inmates: the selectors read only the fields shown."""

from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from commissary.money import format_fen
from commissary.spreadsheets import csv_response, money_cell
from facilities.models import Facility, local_date

from . import selectors


def _published_facility(code: str) -> Facility:
    facility = Facility.objects.filter(code=code, publishes_prices=True).first()
    if facility is None:
        raise Http404
    return facility


@require_safe
def price_list(request, code: str):
    facility = _published_facility(code)
    now = timezone.now()
    rows = selectors.public_price_list(facility=facility, now=now, language=get_language())
    if request.GET.get("format") == "csv":
        return csv_response(
            filename=f"prices-{facility.code}-{local_date(now, facility.timezone).isoformat()}.csv",
            header=[
                _("Category"),
                _("SKU"),
                _("Product"),
                _("Unit"),
                _("Price (yuan)"),
                _("Currency"),
                _("Last change"),
                _("Next price (yuan)"),
                _("Next price from"),
            ],
            rows=(
                [
                    row.category,
                    row.sku,
                    row.name,
                    row.unit,
                    money_cell(row.price_fen),
                    facility.currency,
                    row.changed_on.isoformat() if row.changed_on else "",
                    money_cell(row.next_price_fen),
                    row.next_price_on.isoformat() if row.next_price_on else "",
                ]
                for row in rows
            ),
        )
    categories: dict[str, list] = {}
    for row in rows:
        categories.setdefault(row.category, []).append(
            {
                "row": row,
                "price": format_fen(row.price_fen, facility.currency),
                "next_price": format_fen(row.next_price_fen, facility.currency)
                if row.next_price_fen
                else None,
            }
        )
    return render(
        request,
        "catalog/prices/list.html",
        {
            "facility": facility,
            "categories": categories,
            "today": local_date(now, facility.timezone),
        },
    )


@require_safe
def price_history(request, code: str, sku: str):
    facility = _published_facility(code)
    found = selectors.public_price_history(facility=facility, sku=sku)
    if found is None:
        raise Http404
    product, changes = found
    now = timezone.now()
    return render(
        request,
        "catalog/prices/history.html",
        {
            "facility": facility,
            "product": product,
            "product_name": product.name(),
            "unit": product.unit_zh if get_language().startswith("zh") else product.unit_en,
            "list_price": format_fen(product.price_fen, facility.currency),
            "changes": [
                {
                    "effective_on": change["effective_on"],
                    "is_announced": change["effective_from"] > now,
                    "price": format_fen(change["price_fen"], facility.currency),
                    "previous_price": format_fen(change["previous_price_fen"], facility.currency),
                    "is_rise": change["price_fen"] > change["previous_price_fen"],
                }
                for change in changes
            ],
        },
    )
