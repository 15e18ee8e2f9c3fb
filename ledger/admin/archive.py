"""The archived months of the journal (``ledger.archive``) and what their detach kept: the
per-account totals that stand in for the month's entries and the per-day totals the reports
read. Read-only for everyone, superusers included: the tables are append-only.

A month is the whole journal's (its partition holds every facility's entries), so whoever may
view archived months sees every month and its entry count, as a reconciliation of the whole
ledger is shown; the totals are per account, so each list keeps to the staff member's
facilities."""

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import scope_queryset
from commissary.money import format_fen

from ..models import ArchivedAccountTotal, ArchivedDayTotal, ArchivedJournalMonth
from .base import ReadOnlyAdmin

TOTALS_FACILITY = "account__facility"


def _scoped_count(model, request):
    """How many of the month's rows of ``model`` the staff member may see."""
    rows = scope_queryset(
        model.objects.filter(archived_month=OuterRef("pk")), request.user, TOTALS_FACILITY
    )
    return Coalesce(
        Subquery(
            rows.order_by().values("archived_month").annotate(count=Count("pk")).values("count")
        ),
        0,
    )


def account_shown(account) -> str:
    """An inmate's account by the inmate's number and its kind; a facility's own account as
    the system account of that kind (with its provider, for a clearing account)."""
    if account.inmate_id:
        return f"{account.inmate.inmate_number} {account.get_kind_display()}"
    kind = account.get_kind_display()
    if account.provider:
        kind = f"{kind} ({account.provider})"
    return gettext("System account: %(kind)s") % {"kind": kind}


@admin.register(ArchivedJournalMonth)
class ArchivedJournalMonthAdmin(ReadOnlyAdmin):
    scope_global = True  # the whole journal's months; their totals are scoped below
    # The links to its totals next to the month, where a phone shows them without scrolling;
    # they also say whether its day totals were kept.
    list_display = ("month_shown", "totals_kept", "detached_at", "detached_by", "entries")
    list_filter = ("has_day_totals",)
    ordering = ("-month",)
    fields = (
        "month_shown",
        "detached_at",
        "detached_by",
        "entries",
        "has_day_totals",
        "account_totals",
        "day_totals",
        "starts_at",
        "ends_at",
        "table_name",
        "reconciliation_run",
    )
    readonly_fields = ("month_shown", "entries", "account_totals", "day_totals")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                visible_account_totals=_scoped_count(ArchivedAccountTotal, request),
                visible_day_totals=_scoped_count(ArchivedDayTotal, request),
            )
        )

    @admin.display(description=_("month"), ordering="month")
    def month_shown(self, month):
        return f"{month.month:%Y-%m}"

    @admin.display(description=_("entries (whole journal)"), ordering="entry_count")
    def entries(self, month):
        return f"{month.entry_count:,}"

    @admin.display(description=_("totals kept"))
    def totals_kept(self, month):
        """Both links in one column, one above the other, so the list fits beside the filters
        on a laptop's screen."""
        return format_html("{}<br>{}", self.account_totals(month), self.day_totals(month))

    @admin.display(description=_("account totals"))
    def account_totals(self, month):
        count = month.visible_account_totals
        text = ngettext("%(count)d account total", "%(count)d account totals", count) % {
            "count": count
        }
        url = reverse("admin:ledger_archivedaccounttotal_changelist")
        return format_html('<a href="{}?archived_month__id__exact={}">{}</a>', url, month.pk, text)

    @admin.display(description=_("day totals"))
    def day_totals(self, month):
        if not month.has_day_totals:
            return gettext("day totals not kept")
        count = month.visible_day_totals
        text = ngettext("%(count)d day total", "%(count)d day totals", count) % {"count": count}
        url = reverse("admin:ledger_archiveddaytotal_changelist")
        return format_html('<a href="{}?archived_month__id__exact={}">{}</a>', url, month.pk, text)


class ArchivedTotalAdmin(ReadOnlyAdmin):
    """What the two lists of totals share: scoped by the account's facility, the account by
    its inmate's number or as a system account, the amount in yuan."""

    facility_field = TOTALS_FACILITY
    list_filter = ("archived_month", "account__facility", "account__kind")
    search_fields = ("account__inmate__inmate_number",)
    list_select_related = ("archived_month", "account__facility", "account__inmate")

    @admin.display(description=_("month"), ordering="archived_month__month")
    def month_shown(self, total):
        return f"{total.archived_month.month:%Y-%m}"

    @admin.display(description=_("account"), ordering="account__inmate__inmate_number")
    def account_shown(self, total):
        return account_shown(total.account)

    @admin.display(description=_("account id"), ordering="account_id")
    def account_number(self, total):
        return total.account_id

    @admin.display(description=_("facility"), ordering="account__facility__code")
    def facility(self, total):
        return total.account.facility

    @admin.display(description=_("total"), ordering="amount_fen")
    def amount(self, total):
        return format_fen(total.amount_fen, total.account.currency)


@admin.register(ArchivedAccountTotal)
class ArchivedAccountTotalAdmin(ArchivedTotalAdmin):
    # The total before the facility and the account id, so a phone shows it without scrolling.
    list_display = ("month_shown", "account_shown", "amount", "facility", "account_number")
    ordering = ("-archived_month__month", "account__facility__code", "account_id")


@admin.register(ArchivedDayTotal)
class ArchivedDayTotalAdmin(ArchivedTotalAdmin):
    list_display = ("day", "account_shown", "amount", "facility", "account_number", "month_shown")
    date_hierarchy = "day"
    ordering = ("-day", "account__facility__code", "account_id")
