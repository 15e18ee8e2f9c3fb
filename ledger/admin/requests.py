"""Money requests (maker-checker): staff ask for an adjustment, a reversal or a large
release payout, and a second trust officer assigned to the facility approves or rejects it."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin, scope_queryset
from commissary.errors import DomainError
from commissary.money import format_fen
from facilities.models import Inmate

from .. import services
from ..forms import YuanField
from ..models import (
    StaffRequest,
)
from .filters import AwaitingYouFilter


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
    list_filter = (AwaitingYouFilter, "state", "kind", "facility", "needs_approval")
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
