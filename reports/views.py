"""The dashboard and the reports, inside the staff admin (``admin.site.admin_view`` makes the
viewer a signed-in staff member). Each view checks its own permission (viewing the ledger) and
answers only for a facility the viewer is assigned to; any other facility id is a 404, as if
it did not exist. Charts are SVG images drawn here (``reports.charts``), so the pages run no
script at all. Report periods are forms: a bad, reversed or future date is refused with a
message, never silently replaced.

Their figures are reads that can wait: the dashboard, the charts and the reports read on the
read replica when one is configured and fit (``commissary.replica``); which facilities a viewer
may see is still decided on the primary.

About 440 lines: one short view per report, each with its form.
"""

import datetime as dt
from urllib.parse import urlencode

from csp.decorators import csp_replace
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts import services as accounts_services
from accounts.admin_scope import scope_queryset
from commissary import replica
from commissary.money import format_fen
from commissary.spreadsheets import csv_response, money_cell
from facilities.models import Facility
from ledger.archive import MonthArchived
from ledger.provider_words import provider_name
from monitoring import selectors as monitoring_selectors
from payments import selectors as payment_selectors

from . import charts, selectors

VIEW_PERMISSION = "ledger.view_transaction"
# The labels of the reports' period fields (their names are the query parameters).
PARAM_LABELS = {
    "from": pgettext_lazy("report period", "From"),
    "to": pgettext_lazy("report period", "To"),
    "month": pgettext_lazy("report period", "Month"),
    "date": pgettext_lazy("report period", "Date"),
}


def _facility_for(request, permissions=(VIEW_PERMISSION,)):
    """The facility asked for (``?facility=<id>``), or the viewer's first; 404 outside scope.
    The viewer needs one of ``permissions``."""
    if not any(request.user.has_perm(permission) for permission in permissions):
        raise PermissionDenied
    # On the primary: an assignment just taken away must not linger for the replica's lag.
    facilities = scope_queryset(
        Facility.objects.using(DEFAULT_DB_ALIAS).order_by("name"), request.user, "pk"
    )
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


DASHBOARD_WINDOWS = (7, 30, 90)
DASHBOARD_DEFAULT_WINDOW = 30


class DashboardForm(forms.Form):
    def __init__(self, data):
        if not data.get("days"):
            # Without a window asked for, the page shows the default one: the choice shown
            # says so (the form is bound, so it shows what it was given, not its initial).
            data = data.copy()
            data["days"] = str(DASHBOARD_DEFAULT_WINDOW)
        super().__init__(data, auto_id="param-%s", label_suffix="")

    days = forms.TypedChoiceField(
        label=_("Days shown"),
        choices=[(days, days) for days in DASHBOARD_WINDOWS],
        coerce=int,
        required=False,
        empty_value=DASHBOARD_DEFAULT_WINDOW,
    )


def _dashboard_days(request) -> int:
    form = DashboardForm(request.GET)
    if not form.is_valid():
        raise Http404
    return form.cleaned_data["days"]


@replica.view_reads_can_wait
def dashboard(request):
    facility, facilities = _facility_for(request)
    form = DashboardForm(request.GET)
    if not form.is_valid():
        return _refused(request, "admin/reports/dashboard.html", facility, facilities, form)
    days = form.cleaned_data["days"]
    deposits = selectors.deposits_per_day(facility=facility, days=days)
    sales, unknown_sales_days = selectors.sales_per_day(facility=facility, days=days)
    sales_known = [(day, amount) for day, amount in sales if amount is not None]
    pending_count, pending_fen = selectors.pending_deposits(facility=facility)
    currency = facility.currency
    chart_query = urlencode({"facility": facility.pk, "days": days})
    context = {
        **admin.site.each_context(request),
        "title": gettext("Dashboard: %(facility)s") % {"facility": facility.name},
        "facility": facility,
        "facilities": facilities,
        "form": form,
        "days": days,
        "first_day": deposits[0][0],
        "last_day": deposits[-1][0],
        "deposit_chart_url": f"{reverse('reports:chart', args=['deposits'])}?{chart_query}",
        "sales_chart_url": f"{reverse('reports:chart', args=['sales'])}?{chart_query}",
        "deposit_days": [
            (day, count, format_fen(amount, currency)) for day, count, amount in deposits if count
        ],
        "sales_days": [
            (day, format_fen(amount, currency)) for day, amount in sales_known if amount
        ],
        "deposit_total": format_fen(sum(amount for *_, amount in deposits), currency),
        "deposit_count": sum(count for _, count, _ in deposits),
        "sales_total_fen": sum(amount for _, amount in sales_known),
        "sales_total": format_fen(sum(amount for _, amount in sales_known), currency),
        "sales_note": unknown_sales_days_note(unknown_sales_days),
        "in_trust": format_fen(selectors.money_in_trust_fen(facility=facility), currency),
        "cap_use": selectors.cap_use(facility=facility),
        "pending_count": pending_count,
        "pending_amount": format_fen(pending_fen, currency),
        "low_stock": selectors.low_stock_products(facility=facility),
        "reconciliation": selectors.latest_reconciliation(facility=facility),
        "disabled_schedules": selectors.disabled_money_schedules(),
        "failing_provider_calls": payment_selectors.failing_provider_calls(facility_id=facility.pk),
        "unreadable_merchant_accounts": payment_selectors.unreadable_merchant_accounts(
            facility_id=facility.pk
        ),
        "replica": replica.reading() if replica.is_configured() else None,
        "replica_max_lag_seconds": settings.DATABASE_REPLICA_MAX_LAG_SECONDS,
    }
    return TemplateResponse(request, "admin/reports/dashboard.html", context)


CHARTS = {
    "deposits": (
        _("Deposits credited per day"),
        _("Deposits"),
        lambda facility, days: [
            (day, amount)
            for day, _, amount in selectors.deposits_per_day(facility=facility, days=days)
        ],
    ),
    "sales": (
        _("Net sales per day"),
        _("Net sales"),
        lambda facility, days: selectors.sales_per_day(facility=facility, days=days)[0],
    ),
}


@csp_replace({"style-src": ["'unsafe-inline'"], "script-src": ["'none'"]})
@replica.view_reads_can_wait
def chart(request, kind):
    """A dashboard chart as an SVG image (its own styles inline, no script)."""
    if kind not in CHARTS:
        raise Http404
    facility, _facilities = _facility_for(request)
    days = _dashboard_days(request)
    title, series, points = CHARTS[kind]
    svg = charts.daily_bar_chart(
        points(facility, days),
        title=f"{title} ({facility.name})",
        x_title=gettext("Day (facility time)"),
        y_title=gettext("Yuan"),
        series=str(series),
        currency=facility.currency,
        no_data_text=gettext("Nothing on any of these days"),
    )
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


def _refused(request, template, facility, facilities, form, **extra):
    """The page again with the form's refusals and no figures: a bad, reversed or future date
    is never silently replaced by another."""
    return TemplateResponse(
        request,
        template,
        {
            **admin.site.each_context(request),
            "title": gettext("Check the dates"),
            "facility": facility,
            "facilities": facilities,
            "form": form,
            "refused": True,
            **extra,
        },
        status=400,
    )


class ReportPeriodForm(forms.Form):
    """A report's period fields (named after its query parameters: ``from``, ``to``, ``date``,
    ``month``). Empty means the default; a bad date, a period that ends before it begins or
    a day after the facility's today is refused."""

    def __init__(self, data, *, names, today: dt.date):
        super().__init__(data, auto_id="param-%s", label_suffix="")
        self.today = today
        for name in names:
            self.fields[name] = forms.DateField(
                label=PARAM_LABELS[name],
                required=False,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                input_formats=["%Y-%m-%d"],
                error_messages={"invalid": _("Enter a date as year-month-day, e.g. 2026-03-31.")},
            )

    def clean(self):
        cleaned = super().clean()
        for name, day in list(cleaned.items()):
            if day and day > self.today:
                self.add_error(
                    name,
                    gettext("%(day)s is in the future: choose a day up to %(today)s.")
                    % {"day": day.isoformat(), "today": self.today.isoformat()},
                )
        first, last = cleaned.get("from"), cleaned.get("to")
        if first and last and first > last:
            self.add_error("to", gettext("The period ends before it begins."))
        return cleaned


def days_written(days) -> str:
    """Days as runs: "2026-01-01 – 2026-01-31, 2026-02-03"."""
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(
        run[0].isoformat() if len(run) == 1 else f"{run[0].isoformat()} – {run[-1].isoformat()}"
        for run in runs
    )


def unknown_days_note(days) -> str:
    """The sentence a report shows for the days it cannot give (an archived month's, without day
    totals that fit the facility's days); empty when there are none."""
    if not days:
        return ""
    return gettext(
        "Not given for %(days)s: the journal's entries of these days are archived without day "
        "totals that fit this facility's days. Restore the archived month to read them."
    ) % {"days": days_written(days)}


def unknown_sales_days_note(days) -> str:
    """The dashboard's sentence for the days its net sales leave out (as ``unknown_days_note``)."""
    if not days:
        return ""
    return gettext(
        "The net sales above and in the chart leave out %(days)s: the journal's entries of these "
        "days are archived without day totals that fit this facility's days. Restore the "
        "archived month to read them."
    ) % {"days": days_written(days)}


def _date_range(params, today) -> tuple[dt.date, dt.date]:
    """The report's ``from`` and ``to`` days: the facility's last 30 local days unless asked."""
    last = params.get("to") or today
    return params.get("from") or min(last, today) - dt.timedelta(days=30), last


def _deposits_report(params, facility, today):
    first, last = _date_range(params, today)
    rows = selectors.deposits_by_day_and_provider(facility=facility, first=first, last=last)
    return (
        [_("Day"), _("Provider"), _("Deposits"), _("Amount"), _("Fees")],
        [(day, provider, count, amount, fee) for day, provider, count, amount, fee in rows],
        {3, 4},
        {"from": first, "to": last},
        [],
    )


def _balances_report(params, facility, today):
    day = params.get("date") or today
    try:
        rows, notes = selectors.trust_balances_at(facility=facility, day=day), []
    except MonthArchived as archived:
        rows, notes = [], [str(archived.message)]
    return (
        [_("Inmate number"), _("Surname"), _("Spendable"), _("Held")],
        rows,
        {2, 3},
        {"date": day},
        notes,
    )


def _caps_report(params, facility, today):
    month = (params.get("month") or today).replace(day=1)
    rows = selectors.monthly_cap_report(facility=facility, month=month)
    return (
        [_("Inmate number"), _("Surname"), _("Received"), _("Reserved"), _("Cap"), _("Remaining")],
        rows,
        {2, 3, 4, 5},
        {"month": month},
        [],
    )


def _fees_report(params, facility, today):
    first, last = _date_range(params, today)
    rows, unknown_days = selectors.fees_collected(facility=facility, first=first, last=last)
    notes = [unknown_days_note(unknown_days)] if unknown_days else []
    return ([_("Day"), _("Fees collected")], rows, {1}, {"from": first, "to": last}, notes)


def _sales_report(params, facility, today):
    first, last = _date_range(params, today)
    rows = selectors.sales_by_product(facility=facility, first=first, last=last)
    return (
        [_("SKU"), _("Product (Chinese)"), _("Product (English)"), _("Units sold"), _("Sales")],
        rows,
        {4},
        {"from": first, "to": last},
        [],
    )


def _rules_report(params, facility, today):
    first, last = _date_range(params, today)
    rows = monitoring_selectors.rule_report(facility=facility, first=first, last=last)
    return (
        [
            pgettext_lazy("rule report", "Rule"),
            pgettext_lazy("rule report", "Version"),
            pgettext_lazy("rule report", "Kind"),
            pgettext_lazy("rule report", "Note"),
            pgettext_lazy("rule report", "Active"),
            pgettext_lazy("rule report", "Hits"),
            pgettext_lazy("rule report", "Accepted"),
            pgettext_lazy("rule report", "Rejected"),
            pgettext_lazy("rule report", "Timed out"),
            pgettext_lazy("rule report", "Pending"),
        ],
        [
            (
                rule,
                version,
                kind,
                note,
                pgettext("rule report", "yes") if active else pgettext("rule report", "no"),
                *counts,
            )
            for rule, version, kind, note, active, *counts in rows
        ],
        set(),
        {"from": first, "to": last},
        [],
    )


REPORTS = {
    "deposits": (_("Deposits by day and provider"), ("from", "to"), _deposits_report),
    "balances": (_("Trust balance per inmate at a date"), ("date",), _balances_report),
    "caps": (_("Monthly cap report"), ("month",), _caps_report),
    "fees": (_("Fees collected"), ("from", "to"), _fees_report),
    "sales": (_("Sales by product"), ("from", "to"), _sales_report),
    "rules": (_("Monitoring rules: hits and outcomes"), ("from", "to"), _rules_report),
}
# Columns the page shows in words and the CSV keeps as stored codes, by report and column.
NAMED_ON_THE_PAGE = {"deposits": {1: provider_name}}
# The permission each report needs (the ledger's view permission unless named here).
REPORT_PERMISSIONS = {"rules": "monitoring.view_rule"}


def _permission(slug: str) -> str:
    return REPORT_PERMISSIONS.get(slug, VIEW_PERMISSION)


def report_index(request):
    facility, facilities = _facility_for(request, {_permission(slug) for slug in REPORTS})
    return TemplateResponse(
        request,
        "admin/reports/index.html",
        {
            **admin.site.each_context(request),
            "title": gettext("Reports"),
            "facility": facility,
            "facilities": facilities,
            "reports": [
                (slug, title)
                for slug, (title, *_) in REPORTS.items()
                if request.user.has_perm(_permission(slug))
            ],
        },
    )


@replica.view_reads_can_wait
def report(request, slug):
    if slug not in REPORTS:
        raise Http404
    facility, facilities = _facility_for(request, (_permission(slug),))
    title, names, build = REPORTS[slug]
    today = facility.local_date(timezone.now())
    form = ReportPeriodForm(request.GET, names=names, today=today)
    if not form.is_valid():
        return _refused(request, "admin/reports/report.html", facility, facilities, form, slug=slug)
    columns, rows, money_columns, params, notes = build(form.cleaned_data, facility, today)
    if request.GET.get("format") == "csv":
        # A figure the report cannot give is said in the file too, after its rows.
        return csv_response(
            filename=f"{slug}-{facility.code}.csv",
            header=columns,
            rows=[
                *(
                    [money_cell(v) if i in money_columns else v for i, v in enumerate(row)]
                    for row in rows
                ),
                *([note] for note in notes),
            ],
        )
    named = NAMED_ON_THE_PAGE.get(slug, {})
    shown = [
        [
            format_fen(v, facility.currency)
            if i in money_columns
            else named[i](v)
            if i in named
            else v
            for i, v in enumerate(row)
        ]
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
            "raw_rows": rows,
            "notes": notes,
            "params": [(name, PARAM_LABELS[name], value) for name, value in params.items()],
            "form": ReportPeriodForm(
                {name: value.isoformat() for name, value in params.items()},
                names=names,
                today=today,
            ),
        },
    )


class PreferencesForm(forms.Form):
    receives_digest = forms.BooleanField(
        label=_("Email me each morning what waits at my facilities"), required=False
    )
    language = forms.ChoiceField(
        label=_("Language of my emails"),
        required=False,
        choices=[("", _("The site's language"))] + list(settings.LANGUAGES),
    )


def preferences(request):
    """A staff member's own email choices; nobody changes another's here."""
    user = request.user
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            accounts_services.set_staff_preferences(
                user_id=user.pk,
                receives_digest=form.cleaned_data["receives_digest"],
                language=form.cleaned_data["language"],
            )
            messages.success(request, gettext("Your email choices are saved."))
            return HttpResponseRedirect(reverse("reports:preferences"))
    else:
        form = PreferencesForm(
            initial={"receives_digest": user.receives_digest, "language": user.language}
        )
    return TemplateResponse(
        request,
        "admin/reports/preferences.html",
        {
            **admin.site.each_context(request),
            "title": gettext("My emails"),
            "form": form,
            "has_email": bool(user.email),
        },
    )
