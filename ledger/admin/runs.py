"""Scheduled runs (reconciliation, rollover, statements) with their findings, the statements
they produced, and the schedules themselves (django-celery-beat's, guarded)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from accounts.admin_scope import FacilityScopedAdmin
from commissary.money import format_fen

from ..models import (
    ReconciliationFinding,
    ScheduledRun,
    Statement,
)
from ..tasks import reconcile_ledger
from .base import ReadOnlyAdmin


class FindingInline(FacilityScopedAdmin, admin.TabularInline):
    include_global = True  # findings about the whole ledger belong to no facility
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
    include_global = True  # a reconciliation of the whole ledger belongs to no facility
    inlines = [FindingInline]
    change_list_template = "admin/ledger/scheduledrun/change_list.html"

    @admin.display(description=_("progress"))
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

        if request.POST.get("exact") == "1":
            transaction.on_commit(lambda: reconcile_ledger.delay(trigger="manual", exact=True))
        else:
            transaction.on_commit(lambda: reconcile_ledger.delay(trigger="manual"))
        self.message_user(request, _("Reconciliation queued; it appears here when it has run."))
        return HttpResponseRedirect(reverse("admin:ledger_scheduledrun_changelist"))


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ("inmate", "facility", "month", "opening", "closing", "downloads")
    list_filter = ("facility", "month")
    search_fields = ("inmate__inmate_number", "inmate__surname")
    list_select_related = ("inmate", "facility")
    exclude = ("html", "pdf")

    @admin.display(description=_("opening"))
    def opening(self, statement):
        return format_fen(statement.opening_fen)

    @admin.display(description=_("closing"))
    def closing(self, statement):
        return format_fen(statement.closing_fen)

    @admin.display(description=_("download"))
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
        if kind not in ("html", "pdf"):
            raise Http404
        statement = self.get_scoped_object_or_404(request, statement_id)
        name = f"statement-{statement.inmate_id}-{statement.month:%Y-%m}.{kind}"
        if kind == "pdf":
            response = HttpResponse(bytes(statement.pdf), content_type="application/pdf")
        else:
            response = HttpResponse(statement.html, content_type="text/html; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def _changing(action):
    """django-celery-beat's list actions declare no permission, so anyone who may only view
    the schedules could switch the nightly reconciliation off. Each needs "change", which
    only superusers hold (schedules are global)."""

    def guarded(modeladmin, request, queryset):
        return action(modeladmin, request, queryset)

    guarded.__name__ = action.__name__
    guarded.short_description = action.short_description
    guarded.allowed_permissions = ("change",)
    return guarded


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class ScheduleAdmin(FacilityScopedAdmin, BeatPeriodicTaskAdmin):
    scope_global = True  # one set of schedules for every facility
    enable_tasks = _changing(BeatPeriodicTaskAdmin.enable_tasks)
    disable_tasks = _changing(BeatPeriodicTaskAdmin.disable_tasks)
    toggle_tasks = _changing(BeatPeriodicTaskAdmin.toggle_tasks)
    run_tasks = _changing(BeatPeriodicTaskAdmin.run_tasks)
