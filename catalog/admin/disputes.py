"""The disputes queue for commissary clerks and facility administrators (scoped): open disputes
oldest first, each with its order, the order's pick history and the inmate's other disputes;
the decision (refund all or part of the line, replace, reject) goes through
``catalog.services.disputes`` with an answer the inmate sees at the kiosk."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin, scope_queryset
from commissary.errors import DomainError
from commissary.money import format_fen
from ledger.forms import YuanField

from .. import selectors
from ..models import Dispute, LineRefund, OrderItem
from ..services import disputes as dispute_services


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[
            ("refund", _("Refund the line")),
            ("replace", _("Replace the item")),
            ("reject", _("Reject")),
        ],
        widget=forms.RadioSelect,
    )
    refund = YuanField(
        label=_("Refund"),
        required=False,
        help_text=_("In yuan; empty: all that is left of the line. Only for a refund."),
    )
    answer = forms.CharField(
        label=_("Answer to the inmate"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Shown at the kiosk with the decision."),
    )


class OverdueFilter(admin.SimpleListFilter):
    title = _("deadline")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Open and past the deadline"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(status=Dispute.Status.OPEN, deadline__lte=timezone.now())
        return queryset


@admin.register(Dispute)
class DisputeAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "inmate",
        "order",
        "line_name",
        "reason",
        "status",
        "deadline",
        "is_overdue",
    )
    list_filter = ("status", OverdueFilter, "reason", "facility")
    search_fields = ("inmate__inmate_number", "inmate__surname", "order__id")
    list_select_related = ("inmate", "line", "order")
    ordering = ("created_at", "id")  # the queue: oldest first
    fields = (
        "facility",
        "inmate",
        "order",
        "line",
        "reason",
        "text",
        "status",
        "answer",
        "refunded",
        "deadline",
        "escalated_at",
        "created_at",
        "decided_at",
        "decided_by",
    )
    readonly_fields = fields
    change_form_template = "admin/catalog/dispute/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("inmate", "order", "line", "facility")

    def has_add_permission(self, request):
        return False  # inmates file disputes at the kiosk

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("refunded"))
    def refunded(self, dispute):
        return format_fen(dispute.refund_fen, dispute.order.currency)

    @admin.display(description=_("order line"))
    def line_name(self, dispute):
        return str(dispute.line)

    @admin.display(description=_("overdue"), boolean=True)
    def is_overdue(self, dispute):
        return dispute.status == Dispute.Status.OPEN and dispute.deadline <= timezone.now()

    def get_urls(self):
        return [
            path(
                "report/",
                self.admin_site.admin_view(self.report_view),
                name="catalog_dispute_report",
            ),
            path(
                "<int:dispute_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="catalog_dispute_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        dispute = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if dispute is not None:
            extra_context.update(self._context(request, dispute, DecisionForm()))
        return super().change_view(request, object_id, form_url, extra_context)

    def _context(self, request, dispute, form) -> dict:
        order = dispute.order
        currency = order.currency
        return {
            "dispute": dispute,
            "decision_form": form,
            "can_decide": dispute.status == Dispute.Status.OPEN
            and self.has_change_permission(request, dispute),
            "decide_url": reverse("admin:catalog_dispute_decide", args=[dispute.pk]),
            "order_lines": [
                {
                    "line": line,
                    "total": format_fen(line.line_total_fen, currency),
                    "refunded": format_fen(line.refunded_fen, currency),
                    "is_disputed": line.pk == dispute.line_id,
                }
                for line in order.items.all()
            ],
            "pick_history": [
                {
                    "at": refund.created_at,
                    "what": refund.get_reason_display(),
                    "line": refund.line,
                    "quantity": refund.quantity,
                    "amount": format_fen(refund.amount_fen, currency),
                    "by": refund.created_by,
                }
                for refund in LineRefund.objects.filter(order=order).select_related(
                    "line", "created_by"
                )
            ],
            "order_steps": [
                (gettext("Placed"), order.created_at),
                (gettext("Picked"), order.picked_at),
                (gettext("Delivered"), order.delivered_at),
            ],
            "inmate_history": self.get_queryset(request)
            .filter(inmate_id=dispute.inmate_id)
            .exclude(pk=dispute.pk)
            .order_by("-created_at")[:20],
            "left_to_refund": format_fen(
                dispute.line.line_total_fen - dispute.line.refunded_fen, currency
            ),
        }

    def report_view(self, request):
        """Disputes and refund rates per product, per category and per deciding staff member,
        with decisions in time against the deadline; scoped like the queue."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        scoped_disputes = self.get_queryset(request)
        lines = scope_queryset(OrderItem.objects.all(), request.user, "order__facility")
        return TemplateResponse(
            request,
            "admin/catalog/dispute/report.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Disputes and refunds"),
                "opts": self.model._meta,
                "open_count": scoped_disputes.filter(status=Dispute.Status.OPEN).count(),
                "overdue_count": scoped_disputes.filter(
                    status=Dispute.Status.OPEN, deadline__lte=timezone.now()
                ).count(),
                "tables": [
                    (
                        gettext("By product"),
                        selectors.dispute_rates(
                            disputes=scoped_disputes, lines=lines, by="product"
                        ),
                    ),
                    (
                        gettext("By category"),
                        selectors.dispute_rates(
                            disputes=scoped_disputes, lines=lines, by="category"
                        ),
                    ),
                    (
                        gettext("By staff member who decided"),
                        selectors.dispute_rates(disputes=scoped_disputes, lines=lines, by="staff"),
                    ),
                ],
            },
        )

    def decide_view(self, request, dispute_id):
        dispute = self.get_scoped_object_or_404(request, dispute_id)
        if request.method != "POST" or not self.has_change_permission(request, dispute):
            raise PermissionDenied
        form = DecisionForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                dispute_services.decide_dispute(
                    dispute_id=dispute.pk,
                    decision=data["decision"],
                    refund_fen=data["refund"] if data["decision"] == "refund" else None,
                    answer=data["answer"],
                    staff_id=request.user.pk,
                )
            except DomainError as refused:
                form.add_error(None, refused.message)
            else:
                self.message_user(
                    request,
                    gettext("Dispute #%(id)d decided.") % {"id": dispute.pk},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:catalog_dispute_changelist"))
        return TemplateResponse(
            request,
            "admin/catalog/dispute/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Decide dispute #%(id)d") % {"id": dispute.pk},
                "opts": self.model._meta,
                **self._context(request, dispute, form),
            },
        )
