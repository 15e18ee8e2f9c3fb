"""The journal in the admin: everything read-only. Money changes only through services
(corrections are reversing transactions), so no admin form can write a balance."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from .models import (
    Account,
    Deposit,
    Entry,
    MonthlyPeriod,
    ReconciliationFinding,
    ScheduledRun,
    Statement,
    Transaction,
)
from .money import format_fen
from .selectors import account_balance_fen


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "facility",
        "inmate",
        "provider",
        "balance",
        "pending",
        "is_frozen",
        "is_closed",
    )
    list_filter = ("kind", "facility", "is_frozen", "is_closed")
    search_fields = ("inmate__inmate_number", "inmate__surname")
    list_select_related = ("facility", "inmate")

    @admin.display(description="balance")
    def balance(self, account):
        return format_fen(account_balance_fen(account=account), account.currency)

    @admin.display(description="pending deposits")
    def pending(self, account):
        return format_fen(account.pending_fen, account.currency)


class EntryInline(admin.TabularInline):
    model = Entry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="amount")
    def amount(self, entry):
        return format_fen(entry.amount_fen, entry.account.currency)


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "facility",
        "inmate",
        "memo",
        "created_by",
        "approved_by",
    )
    list_filter = ("kind", "facility")
    search_fields = ("idempotency_key", "inmate__inmate_number", "memo")
    date_hierarchy = "created_at"
    list_select_related = ("facility", "inmate", "created_by", "approved_by")
    inlines = [EntryInline]


@admin.register(MonthlyPeriod)
class MonthlyPeriodAdmin(ReadOnlyAdmin):
    list_display = ("inmate", "facility", "month", "received", "reserved", "cap", "closed_at")
    list_filter = ("facility", "month")
    search_fields = ("inmate__inmate_number",)
    list_select_related = ("inmate", "facility")

    @admin.display(description="received")
    def received(self, period):
        return format_fen(period.received_fen)

    @admin.display(description="reserved")
    def reserved(self, period):
        return format_fen(period.reserved_fen)

    @admin.display(description="cap")
    def cap(self, period):
        return format_fen(period.cap_fen)


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    list_display = (
        "reference",
        "created_at",
        "inmate",
        "amount",
        "fee",
        "status",
        "provider",
        "expires_at",
    )
    list_filter = ("status", "provider", "facility")
    search_fields = ("reference", "inmate__inmate_number", "provider_reference")
    date_hierarchy = "created_at"
    list_select_related = ("inmate",)

    @admin.display(description="amount")
    def amount(self, deposit):
        return format_fen(deposit.amount_fen, deposit.currency)

    @admin.display(description="fee")
    def fee(self, deposit):
        return format_fen(deposit.fee_fen, deposit.currency)


class FindingInline(admin.TabularInline):
    model = ReconciliationFinding
    fields = ("check_name", "facility", "subject", "expected", "actual")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ScheduledRun)
class ScheduledRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "kind",
        "facility",
        "month",
        "status",
        "progress",
        "counts",
        "trigger",
        "finished_at",
    )
    list_filter = ("kind", "status", "facility")
    date_hierarchy = "started_at"
    inlines = [FindingInline]
    change_list_template = "admin/ledger/scheduledrun/change_list.html"

    @admin.display(description="progress")
    def progress(self, run):
        if not run.progress_total:
            return "—"
        return f"{run.progress_done:,} / {run.progress_total:,}"

    def get_urls(self):
        return [
            path(
                "reconcile-now/",
                self.admin_site.admin_view(self.reconcile_now),
                name="ledger_scheduledrun_reconcile_now",
            ),
        ] + super().get_urls()

    def reconcile_now(self, request):
        """Queue a reconciliation run now (POST only); the worker records it like any other."""
        if request.method != "POST" or not request.user.has_perm("ledger.view_scheduledrun"):
            return HttpResponseNotAllowed(["POST"])
        from .tasks import reconcile_ledger  # noqa: PLC0415 (tasks import the Celery app)

        if request.POST.get("exact") == "1":
            transaction.on_commit(lambda: reconcile_ledger.delay(trigger="manual", exact=True))
        else:
            transaction.on_commit(lambda: reconcile_ledger.delay(trigger="manual"))
        self.message_user(request, "Reconciliation queued; it appears here when it has run.")
        return HttpResponseRedirect(reverse("admin:ledger_scheduledrun_changelist"))


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ("inmate", "facility", "month", "opening", "closing", "downloads")
    list_filter = ("facility", "month")
    search_fields = ("inmate__inmate_number", "inmate__surname")
    list_select_related = ("inmate", "facility")
    exclude = ("html", "pdf")

    @admin.display(description="opening")
    def opening(self, statement):
        return format_fen(statement.opening_fen)

    @admin.display(description="closing")
    def closing(self, statement):
        return format_fen(statement.closing_fen)

    @admin.display(description="download")
    def downloads(self, statement):
        return format_html(
            '<a href="{}">HTML</a> · <a href="{}">PDF</a>',
            reverse("admin:ledger_statement_download", args=[statement.pk, "html"]),
            reverse("admin:ledger_statement_download", args=[statement.pk, "pdf"]),
        )

    def get_queryset(self, request):
        return super().get_queryset(request).defer("html", "pdf")

    def get_urls(self):
        return [
            path(
                "<int:statement_id>/download.<str:kind>",
                self.admin_site.admin_view(self.download),
                name="ledger_statement_download",
            ),
        ] + super().get_urls()

    def download(self, request, statement_id, kind):
        if not self.has_view_permission(request):
            raise PermissionDenied
        statement = Statement.objects.filter(pk=statement_id).first()
        if statement is None or kind not in ("html", "pdf"):
            raise Http404
        name = f"statement-{statement.inmate_id}-{statement.month:%Y-%m}.{kind}"
        if kind == "pdf":
            response = HttpResponse(bytes(statement.pdf), content_type="application/pdf")
        else:
            response = HttpResponse(statement.html, content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
