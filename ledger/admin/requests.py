"""Money requests (maker-checker): staff ask for an adjustment, a reversal or a large
release payout, and a second trust officer assigned to the facility approves or rejects it.
Facility policy changes (filed from the facility's page) are decided here too, by a second
facility administrator. The requester can withdraw their own waiting request (the "withdraw"
action, with a confirmation page); nobody else can.

About 400 lines: the list, the filing form, the preview and the decide/withdraw actions of
one screen family.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import selectors as people
from accounts.admin_scope import FacilityScopedAdmin, scope_queryset
from commissary.errors import DomainError
from commissary.money import format_fen
from facilities.models import Facility, Inmate, policy_value_display

from .. import services
from ..forms import YuanField
from ..models import (
    StaffRequest,
)
from .filters import AwaitingYouFilter


class StaffRequestForm(forms.Form):
    """What a trust officer asks for. Amounts in yuan; a reversal names the journal
    transaction by its number."""

    inmate = forms.ModelChoiceField(
        queryset=Inmate.objects.none(),
        label=_("Inmate"),
        help_text=_("Type the inmate's number or name."),
    )
    kind = forms.ChoiceField(
        choices=[
            choice
            for choice in StaffRequest.Kind.choices
            if choice[0] != StaffRequest.Kind.POLICY_CHANGE
        ],
        label=_("What should be done"),
    )
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
    actions = ("withdraw_requests",)
    readonly_fields = (
        "kind",
        "state",
        "facility",
        "inmate",
        "amount",
        "policy_change_lines",
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

    def get_fields(self, request, obj=None):
        # A money request is about an inmate's money, a policy change about the facility's.
        if obj is None:
            return super().get_fields(request, obj)
        hidden = (
            {"inmate", "amount", "target_transaction", "transaction", "account_event"}
            if obj.is_policy_change
            else {"policy_change_lines"}
        )
        return [field for field in super().get_fields(request, obj) if field not in hidden]

    def has_withdraw_permission(self, request):
        """Whoever can file a request (a money request, or a policy change) may withdraw their
        own; the service refuses anyone else's."""
        return request.user.has_perm("ledger.add_staffrequest") or request.user.has_perm(
            "facilities.change_facility"
        )

    @admin.display(description=_("amount"))
    def amount(self, staff_request):
        return format_fen(staff_request.amount_fen) if staff_request.amount_fen else "—"

    @admin.display(description=_("policy changes"))
    def policy_change_lines(self, staff_request):
        if not staff_request.policy_changes:
            return "—"
        currency = staff_request.facility.currency
        return format_html_join(
            "",
            "<div>{}: {} → {}</div>",
            (
                (
                    Facility._meta.get_field(field).verbose_name,
                    policy_value_display(field, change["from"], currency),
                    policy_value_display(field, change["to"], currency),
                )
                for field, change in staff_request.policy_changes.items()
            ),
        )

    def get_urls(self):
        return [
            path(
                "<int:staff_request_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="ledger_staffrequest_decide",
            ),
            path(
                "<int:staff_request_id>/withdraw/",
                self.admin_site.admin_view(self.withdraw_view),
                name="ledger_staffrequest_withdraw",
            ),
        ] + super().get_urls()

    # --- withdrawing one's own request ----------------------------------------------------

    @admin.action(description=_("Withdraw my selected waiting requests"), permissions=("withdraw",))
    def withdraw_requests(self, request, queryset):
        return self._withdraw(request, list(queryset.select_related("inmate", "facility")))

    def withdraw_view(self, request, staff_request_id):
        """The withdraw confirmation page of one request (its page links here)."""
        if not self.has_withdraw_permission(request):
            raise PermissionDenied
        staff_request = self.get_scoped_object_or_404(request, staff_request_id)
        response = self._withdraw(request, [staff_request])
        return response or HttpResponseRedirect(
            reverse("admin:ledger_staffrequest_change", args=[staff_request.pk])
        )

    def _withdraw(self, request, staff_requests):
        """Show what will be withdrawn (the user's own waiting requests) and what will not;
        withdraw on confirmation. Nothing moves either way."""
        own = [
            staff_request
            for staff_request in staff_requests
            if staff_request.requested_by_id == request.user.pk
            and staff_request.state == StaffRequest.State.REQUESTED
        ]
        others = [staff_request for staff_request in staff_requests if staff_request not in own]
        if request.POST.get("confirm_withdraw") and own:
            withdrawn = 0
            for staff_request in own:
                try:
                    services.withdraw_request(
                        staff_request_id=staff_request.pk,
                        staff_id=request.user.pk,
                        note=request.POST.get("decision_note", ""),
                    )
                    withdrawn += 1
                except DomainError as refused:
                    self.message_user(
                        request, f"#{staff_request.pk}: {gettext(refused.message)}", messages.ERROR
                    )
            if withdrawn:
                self.message_user(
                    request,
                    gettext("Withdrawn: %(count)d request(s); nothing moved.")
                    % {"count": withdrawn},
                    messages.SUCCESS,
                )
            return None
        if not own:
            self.message_user(
                request,
                gettext("Only your own requests that still wait can be withdrawn."),
                messages.WARNING,
            )
            return None
        return TemplateResponse(
            request,
            "admin/ledger/staffrequest/withdraw_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Withdraw requests"),
                "opts": self.model._meta,
                "own": own,
                "others": others,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

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
        # Searched by number or name, within the user's facilities (the inmate admin's scoped
        # queryset answers): never a select of every inmate. The widget first: setting the
        # queryset hands it the choices.
        form.fields["inmate"].widget = AutocompleteSelect(
            StaffRequest._meta.get_field("inmate"), self.admin_site
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
                    staff_id=request.user.pk,
                )
                if preview.refusal is not None:
                    # The words the approver would meet: the request is not filed.
                    form.add_error(None, gettext(preview.refusal.message))
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
                "refused": preview is not None and preview.refusal is not None,
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
                if not self._may_approve_kind(request, staff_request):
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

    @staticmethod
    def _may_approve_kind(request, staff_request) -> bool:
        if staff_request.is_policy_change:
            return request.user.is_superuser or request.user.has_perm("ledger.approve_policy")
        return request.user.has_perm("ledger.approve_money")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        staff_request = self.get_scoped_object_or_404(request, object_id)
        is_waiting = staff_request.state == StaffRequest.State.REQUESTED
        is_requester = request.user.pk == staff_request.requested_by_id
        may_decide = (
            is_waiting and not is_requester and self._may_approve_kind(request, staff_request)
        )
        if may_decide:
            decide = (
                people.may_approve_policy if staff_request.is_policy_change else people.may_approve
            )
            may_decide = decide(
                approver_id=request.user.pk,
                requester_id=staff_request.requested_by_id,
                facility_id=staff_request.facility_id,
            )
        extra_context = {
            **(extra_context or {}),
            "may_approve": may_decide,
            "may_reject": may_decide,
            "may_withdraw": is_waiting and is_requester,
        }
        return super().change_view(request, object_id, form_url, extra_context)
