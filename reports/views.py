"""The dashboard and the reports, inside the staff admin (``admin.site.admin_view`` makes the
viewer a signed-in staff member). Each view checks its own permission (viewing the ledger) and
answers only for a facility the viewer is assigned to; any other facility id is a 404, as if
it did not exist. Charts are SVG drawn here, so the pages run no script at all."""

import csv
import datetime as dt
from dataclasses import dataclass

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import scope_queryset
from commissary.money import format_fen, format_yuan_plain
from facilities.models import Facility

from . import selectors

VIEW_PERMISSION = "ledger.view_transaction"
# The labels of the reports' period fields (their names are the query parameters).
PARAM_LABELS = {
    "from": pgettext_lazy("report period", "From"),
    "to": pgettext_lazy("report period", "To"),
    "month": pgettext_lazy("report period", "Month"),
    "date": pgettext_lazy("report period", "Date"),
}
CHART_WIDTH, CHART_HEIGHT = 720, 160


def _facility_for(request):
    """The facility asked for (``?facility=<id>``), or the viewer's first; 404 outside scope."""
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    facilities = scope_queryset(Facility.objects.order_by("name"), request.user, "pk")
    asked = request.GET.get("facility", "")
    if asked:
        if not asked.isdigit():
            raise Http404
        facility = facilities.filter(pk=int(asked)).first()
    else:
        facility = facilities.first()
    if facility is None:
        raise Http404
    return facility, facilities


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    label: str


def bar_chart(points: list[tuple[dt.date, int]], currency: str) -> dict:
    """An SVG bar chart of (day, fen) points, laid out here."""
    largest = max((value for _, value in points), default=0) or 1
    width = CHART_WIDTH // max(len(points), 1)
    bars = []
    for index, (day, value) in enumerate(points):
        height = round(CHART_HEIGHT * max(value, 0) / largest)
        bars.append(
            Bar(
                x=index * width,
                y=CHART_HEIGHT - height,
                width=max(width - 1, 1),
                height=height,
                label=f"{day:%Y-%m-%d}: {format_fen(value, currency)}",
            )
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "largest": format_fen(largest if largest != 1 else 0, currency),
        "first_day": points[0][0] if points else None,
        "last_day": points[-1][0] if points else None,
    }


def dashboard(request):
    facility, facilities = _facility_for(request)
    deposits = selectors.deposits_per_day(facility=facility)
    sales = selectors.sales_per_day(facility=facility)
    pending_count, pending_fen = selectors.pending_deposits(facility=facility)
    currency = facility.currency
    context = {
        **admin.site.each_context(request),
        "title": gettext("Dashboard: %(facility)s") % {"facility": facility.name},
        "facility": facility,
        "facilities": facilities,
        "deposit_chart": bar_chart([(day, amount) for day, _, amount in deposits], currency),
        "deposit_total": format_fen(sum(amount for *_, amount in deposits), currency),
        "deposit_count": sum(count for _, count, _ in deposits),
        "sales_chart": bar_chart(sales, currency),
        "sales_total": format_fen(sum(amount for _, amount in sales), currency),
        "in_trust": format_fen(selectors.money_in_trust_fen(facility=facility), currency),
        "cap_use": selectors.cap_use(facility=facility),
        "pending_count": pending_count,
        "pending_amount": format_fen(pending_fen, currency),
        "low_stock": selectors.low_stock_products(facility=facility),
        "reconciliation": selectors.latest_reconciliation(facility=facility),
        "disabled_schedules": selectors.disabled_money_schedules(),
    }
    return TemplateResponse(request, "admin/reports/dashboard.html", context)


def _date(text: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if text else default
    except ValueError:
        return default


def _date_range(request, facility) -> tuple[dt.date, dt.date]:
    """The report's ``from`` and ``to`` days: the facility's last 30 local days unless asked."""
    today = facility.local_date(timezone.now())
    first = _date(request.GET.get("from", ""), today - dt.timedelta(days=30))
    return first, _date(request.GET.get("to", ""), today)


def _deposits_report(request, facility):
    first, last = _date_range(request, facility)
    rows = selectors.deposits_by_day_and_provider(facility=facility, first=first, last=last)
    return (
        [_("Day"), _("Provider"), _("Deposits"), _("Amount"), _("Fees")],
        [(day, provider, count, amount, fee) for day, provider, count, amount, fee in rows],
        {3, 4},
        {"from": first, "to": last},
    )


def _balances_report(request, facility):
    day = _date(request.GET.get("date", ""), facility.local_date(timezone.now()))
    rows = selectors.trust_balances_at(facility=facility, day=day)
    return (
        [_("Inmate number"), _("Surname"), _("Spendable"), _("Held")],
        rows,
        {2, 3},
        {"date": day},
    )


def _caps_report(request, facility):
    month = _date(request.GET.get("month", ""), facility.local_month(timezone.now()))
    rows = selectors.monthly_cap_report(facility=facility, month=month.replace(day=1))
    return (
        [_("Inmate number"), _("Surname"), _("Received"), _("Reserved"), _("Cap"), _("Remaining")],
        rows,
        {2, 3, 4, 5},
        {"month": month.replace(day=1)},
    )


def _fees_report(request, facility):
    first, last = _date_range(request, facility)
    rows = selectors.fees_collected(facility=facility, first=first, last=last)
    return ([_("Day"), _("Fees collected")], rows, {1}, {"from": first, "to": last})


def _sales_report(request, facility):
    first, last = _date_range(request, facility)
    rows = selectors.sales_by_product(facility=facility, first=first, last=last)
    return (
        [_("SKU"), _("Product (Chinese)"), _("Product (English)"), _("Units sold"), _("Sales")],
        rows,
        {4},
        {"from": first, "to": last},
    )


REPORTS = {
    "deposits": (_("Deposits by day and provider"), _deposits_report),
    "balances": (_("Trust balance per inmate at a date"), _balances_report),
    "caps": (_("Monthly cap report"), _caps_report),
    "fees": (_("Fees collected"), _fees_report),
    "sales": (_("Sales by product"), _sales_report),
}


def report_index(request):
    facility, facilities = _facility_for(request)
    return TemplateResponse(
        request,
        "admin/reports/index.html",
        {
            **admin.site.each_context(request),
            "title": gettext("Reports"),
            "facility": facility,
            "facilities": facilities,
            "reports": [(slug, title) for slug, (title, _) in REPORTS.items()],
        },
    )


def report(request, slug):
    if slug not in REPORTS:
        raise Http404
    facility, facilities = _facility_for(request)
    title, build = REPORTS[slug]
    columns, rows, money_columns, params = build(request, facility)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{slug}-{facility.code}.csv"'
        response.write("\ufeff")  # spreadsheet programs read the Chinese names as UTF-8
        writer = csv.writer(response)
        writer.writerow([str(column) for column in columns])
        for row in rows:
            writer.writerow(
                [
                    format_yuan_plain(v, grouped=False) if i in money_columns else v
                    for i, v in enumerate(row)
                ]
            )
        return response
    shown = [
        [format_fen(v, facility.currency) if i in money_columns else v for i, v in enumerate(row)]
        for row in rows
    ]
    return TemplateResponse(
        request,
        "admin/reports/report.html",
        {
            **admin.site.each_context(request),
            "title": f"{title}: {facility.name}",
            "facility": facility,
            "facilities": facilities,
            "slug": slug,
            "columns": columns,
            "rows": shown,
            "params": [(name, PARAM_LABELS[name], value) for name, value in params.items()],
        },
    )
