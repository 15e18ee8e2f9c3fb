"""The journal in the admin: everything read-only. Money changes only through services
(corrections are reversing transactions, requested and approved as ``StaffRequest``s), so no
admin form can write a balance. Every screen is scoped to the staff member's facilities."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV

from accounts.admin_scope import FacilityScopedAdmin, scope_queryset
from commissary.errors import DomainError
from facilities.models import Inmate

from . import services
from .exports import DepositResource, JournalResource
from .forms import YuanField
from .models import (
    Account,
    AccountEvent,
    Deposit,
    Entry,
    MonthlyPeriod,
    ReconciliationFinding,
    ScheduledRun,
    StaffRequest,
    Statement,
    Transaction,
)
from .money import format_fen
from .selectors import account_balance_fen


class ScopedExportMixin(ExportMixin):
    """CSV export of the admin list as it stands (scope, search, filters), for whoever may
    view it."""

    formats = [CSV]
    skip_export_form = True

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_valid_export_item_pks(self, request):
        return self.get_queryset(request).values_list("pk", flat=True)


class ReadOnlyAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    def get_fields(self, request, obj=None):
        # The view page shows amounts in yuan: an ``x_fen`` field gives way to the admin's
        # ``x`` display (the one its list shows) where there is one.
        return [
            name.removesuffix("_fen")
            if isinstance(name, str) and name.endswith("_fen") and hasattr(self, name[:-4])
            else name
            for name in super().get_fields(request, obj)
        ]

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

    @admin.display(description=_("balance"))
    def balance(self, account):
        return format_fen(account_balance_fen(account=account), account.currency)

    @admin.display(description=_("pending deposits"))
    def pending(self, account):
        return format_fen(account.pending_fen, account.currency)


class EntryInline(FacilityScopedAdmin, admin.TabularInline):
    model = Entry
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("amount"))
    def amount(self, entry):
        return format_fen(entry.amount_fen, entry.account.currency)


@admin.register(Transaction)
class TransactionAdmin(ScopedExportMixin, ReadOnlyAdmin):
    """The journal, newest first, each line with the amount it moved and between which
    accounts."""

    list_display = (
        "id",
        "created_at",
        "kind",
        "facility",
        "inmate",
        "amount_moved",
        "accounts_moved",
        "memo",
        "created_by",
        "approved_by",
    )
    list_filter = ("kind", "facility")
    search_fields = ("idempotency_key", "inmate__inmate_number", "memo")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    list_select_related = ("facility", "inmate", "created_by", "approved_by")
    inlines = [EntryInline]
    resource_classes = [JournalResource]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("entries__account__inmate")

    @admin.display(description=_("amount moved"))
    def amount_moved(self, journal_transaction):
        entries = list(journal_transaction.entries.all())
        moved_fen = sum(entry.amount_fen for entry in entries if entry.amount_fen > 0)
        currency = entries[0].account.currency if entries else "CNY"
        return format_fen(moved_fen, currency)

    @admin.display(description=_("from → to"))
    def accounts_moved(self, journal_transaction):
        entries = list(journal_transaction.entries.all())
        taken = ", ".join(str(e.account) for e in entries if e.amount_fen < 0)
        given = ", ".join(str(e.account) for e in entries if e.amount_fen > 0)
        return f"{taken} → {given}"


@admin.register(MonthlyPeriod)
class MonthlyPeriodAdmin(ReadOnlyAdmin):
    list_display = ("inmate", "facility", "month", "received", "reserved", "cap", "closed_at")
    list_filter = ("facility", "month")
    search_fields = ("inmate__inmate_number",)
    list_select_related = ("inmate", "facility")

    @admin.display(description=_("received"))
    def received(self, period):
        return format_fen(period.received_fen)

    @admin.display(description=_("reserved"))
    def reserved(self, period):
        return format_fen(period.reserved_fen)

    @admin.display(description=_("cap"))
    def cap(self, period):
        return format_fen(period.cap_fen)


@admin.register(Deposit)
class DepositAdmin(ScopedExportMixin, ReadOnlyAdmin):
    resource_classes = [DepositResource]
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

    @admin.display(description=_("amount"))
    def amount(self, deposit):
        return format_fen(deposit.amount_fen, deposit.currency)

    @admin.display(description=_("fee"))
    def fee(self, deposit):
        return format_fen(deposit.fee_fen, deposit.currency)


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
        from .tasks import reconcile_ledger  # noqa: PLC0415 (tasks import the Celery app)

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


# --- money requests (maker-checker) -----------------------------------------------------


class StaffRequestForm(forms.Form):
    """What a trust officer asks for. Amounts in yuan; a reversal names the journal
    transaction by its number."""

    inmate = forms.ModelChoiceField(queryset=Inmate.objects.none(), label=_("Inmate"))
    kind = forms.ChoiceField(choices=StaffRequest.Kind.choices, label=_("What should be done"))
    amount = YuanField(
        label=_("Amount"),
        required=False,
        help_text=_("In yuan, for example 1,234.50: for adjustments, holds and their release."),
    )
    transaction_number = forms.IntegerField(
        label=_("Journal transaction number"),
        required=False,
        min_value=1,
        help_text=_("For a reversal: the number of the staff transaction to reverse."),
    )
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        cleaned_data = super().clean()
        kind = cleaned_data.get("kind")
        if kind in StaffRequest.AMOUNT_KINDS and cleaned_data.get("amount") is None:
            self.add_error("amount", gettext("Type the amount in yuan."))
        if kind == StaffRequest.Kind.REVERSAL and not cleaned_data.get("transaction_number"):
            self.add_error("transaction_number", gettext("Say which transaction to reverse."))
        return cleaned_data


@admin.register(StaffRequest)
class StaffRequestAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """Trust officers ask here; a second trust officer of the facility approves or rejects on
    the request's page. Asking, approving and rejecting are services
    (``ledger.services.requests``); this only shows what will happen and passes the choice on."""

    list_display = (
        "id",
        "requested_at",
        "facility",
        "inmate",
        "kind",
        "amount",
        "state",
        "requested_by",
        "decided_by",
    )
    list_filter = ("state", "kind", "facility", "needs_approval")
    search_fields = ("inmate__inmate_number", "inmate__surname", "reason")
    ordering = ("-requested_at", "-id")
    date_hierarchy = "requested_at"
    list_select_related = ("facility", "inmate", "requested_by", "decided_by")
    change_form_template = "admin/ledger/staffrequest/change_form.html"
    actions = None
    readonly_fields = (
        "kind",
        "state",
        "facility",
        "inmate",
        "amount",
        "target_transaction",
        "reason",
        "needs_approval",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_note",
        "transaction",
        "account_event",
        "executed_at",
    )
    fields = readonly_fields

    def has_change_permission(self, request, obj=None):
        return False  # a request changes only by being approved or rejected

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("amount"))
    def amount(self, staff_request):
        return format_fen(staff_request.amount_fen) if staff_request.amount_fen else "—"

    def get_urls(self):
        return [
            path(
                "<int:staff_request_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="ledger_staffrequest_decide",
            ),
        ] + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        inmates = scope_queryset(
            Inmate.objects.filter(status=Inmate.Status.ACTIVE).select_related("facility"),
            request.user,
            "facility",
        )
        form = StaffRequestForm(
            request.POST if request.method == "POST" else None,
            initial={"inmate": request.GET.get("inmate")},
        )
        form.fields["inmate"].queryset = inmates
        preview = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            try:
                if "confirm" in request.POST:
                    staff_request = services.request_money_action(
                        kind=data["kind"],
                        inmate_id=data["inmate"].pk,
                        amount_fen=data["amount"],
                        transaction_id=data["transaction_number"],
                        reason=data["reason"],
                        staff_id=request.user.pk,
                    )
                    self.message_user(request, self._outcome_message(staff_request))
                    return HttpResponseRedirect(
                        reverse("admin:ledger_staffrequest_change", args=[staff_request.pk])
                    )
                preview = services.preview_request(
                    kind=data["kind"],
                    inmate=data["inmate"],
                    amount_fen=data["amount"],
                    transaction_id=data["transaction_number"],
                )
            except DomainError as refused:
                form.add_error(None, gettext(refused.message))
        return TemplateResponse(
            request,
            "admin/ledger/staffrequest/request_form.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Ask for a money action"),
                "opts": self.model._meta,
                "form": form,
                "preview": preview and self._preview_lines(preview),
                "needs_approval": preview and preview.needs_approval,
                "media": self.media + form.media,
            },
        )

    @staticmethod
    def _preview_lines(preview) -> list[tuple[str, str, str]]:
        currency = preview.currency
        lines = [
            (
                gettext("Spendable"),
                format_fen(preview.spendable_before_fen, currency),
                format_fen(preview.spendable_after_fen, currency),
            ),
            (
                gettext("Held"),
                format_fen(preview.held_before_fen, currency),
                format_fen(preview.held_after_fen, currency),
            ),
            (
                gettext("Room under the balance cap"),
                format_fen(preview.balance_room_before_fen, currency),
                format_fen(preview.balance_room_after_fen, currency),
            ),
        ]
        if preview.paid_out_fen:
            lines.append((gettext("Paid out"), "", format_fen(preview.paid_out_fen, currency)))
        return lines

    @staticmethod
    def _outcome_message(staff_request) -> str:
        if staff_request.state == StaffRequest.State.EXECUTED:
            return gettext("Done: request #%(id)d was executed.") % {"id": staff_request.pk}
        return gettext(
            "Request #%(id)d is waiting for a second trust officer of the facility to approve it."
        ) % {"id": staff_request.pk}

    def decide_view(self, request, staff_request_id):
        """Approve or reject (POST only). The service decides who may; this passes it on."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        staff_request = self.get_scoped_object_or_404(request, staff_request_id)
        note = request.POST.get("decision_note", "")
        try:
            if request.POST.get("decision") == "approve":
                if not request.user.has_perm("ledger.approve_money"):
                    raise PermissionDenied
                services.approve_request(
                    staff_request_id=staff_request.pk, approver_id=request.user.pk, note=note
                )
                self.message_user(
                    request,
                    gettext("Approved: request #%(id)d was executed.") % {"id": staff_request.pk},
                )
            else:
                services.reject_request(
                    staff_request_id=staff_request.pk, staff_id=request.user.pk, note=note
                )
                self.message_user(
                    request,
                    gettext("Rejected: request #%(id)d moved nothing.") % {"id": staff_request.pk},
                )
        except DomainError as refused:
            self.message_user(request, gettext(refused.message), messages.ERROR)
        return HttpResponseRedirect(
            reverse("admin:ledger_staffrequest_change", args=[staff_request.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        staff_request = self.get_scoped_object_or_404(request, object_id)
        is_waiting = staff_request.state == StaffRequest.State.REQUESTED
        extra_context = {
            **(extra_context or {}),
            "may_approve": is_waiting
            and request.user.has_perm("ledger.approve_money")
            and request.user.pk != staff_request.requested_by_id,
            "may_reject": is_waiting
            and (
                request.user.has_perm("ledger.approve_money")
                or request.user.pk == staff_request.requested_by_id
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "facility", "inmate", "reason", "created_by")
    list_filter = ("kind", "facility")
    search_fields = ("inmate__inmate_number", "reason")
    ordering = ("-created_at", "-id")
    date_hierarchy = "created_at"
    list_select_related = ("facility", "inmate", "created_by")


# --- schedules ----------------------------------------------------------------------------


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
