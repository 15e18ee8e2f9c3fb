"""Transfer and release of inmates from the inmate list: each a confirmation page, then one
service call per inmate (a release paying out more than the facility's threshold waits for a
second trust officer as a money request)."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import scope_queryset
from commissary.errors import DomainError
from commissary.money import format_fen
from ledger.selectors import (
    release_needs_approval,
    release_payout_fen,
    transfer_excess_fen,
)

from .. import services
from ..models import Facility, Inmate
from ..selectors import grade_names_at


class TransferForm(forms.Form):
    to_facility = forms.ModelChoiceField(queryset=Facility.objects.none(), label=_("To facility"))
    # Made once when the form is shown and posted back with it, so submitting the same form
    # twice (a double click, a resent POST) transfers once.
    request_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)


class ReleaseForm(forms.Form):
    """Releasing pays money out: the staff member types back how many inmates they release.
    When some payout is above the facility's threshold, its release is filed as a money
    request for a second trust officer, with the reason typed here."""

    confirm_count = forms.IntegerField(label=_("Type the number of inmates to release"))
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Needed when a payout waits for a second trust officer: it goes on the money request."
        ),
    )
    request_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args, count: int, waiting: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.count = count
        self.waiting = waiting
        if not waiting:
            del self.fields["reason"]

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if self.waiting and not reason:
            raise forms.ValidationError(
                gettext(
                    "Give a reason: the releases that wait for a second trust officer are "
                    "filed with it."
                )
            )
        return reason

    def clean_confirm_count(self):
        typed = self.cleaned_data["confirm_count"]
        if typed != self.count:
            raise forms.ValidationError(
                gettext("You selected %(count)d inmates; type %(count)d to release them.")
                % {"count": self.count}
            )
        return typed


class InmateMovesAdminMixin:
    """The inmate list's transfer and release actions, each behind a confirmation page that
    shows every selected inmate's money and what will happen to it."""

    def _confirmation(self, request, queryset, *, template, title, action, form, rows):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "rows": rows,
                "inmates": queryset,
                "selected_ids": list(queryset.values_list("pk", flat=True)),
                "form": form,
                "action": action,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "media": self.media,
            },
        )

    def _nothing_to_do(self, request):
        """No confirmation page for an action that can do nothing: a message says why."""
        self.message_user(
            request,
            gettext("None of the selected inmates is held here any more: released inmates stay."),
            messages.WARNING,
        )

    @admin.action(
        description=_("Transfer selected inmates to another facility"),
        permissions=("change",),
    )
    def transfer_inmates(self, request, queryset):
        queryset = queryset.filter(status=Inmate.Status.ACTIVE).select_related("grade")
        if not queryset.exists():
            return self._nothing_to_do(request)
        destinations = scope_queryset(Facility.objects.all(), request.user, "pk")
        form = TransferForm(request.POST if "to_facility" in request.POST else None)
        form.fields["to_facility"].queryset = destinations
        rows = []
        if form.is_bound and form.is_valid():
            to_facility = form.cleaned_data["to_facility"]
            if "apply" in request.POST:
                self._transfer(request, queryset, form.cleaned_data)
                return None
            grades_there = grade_names_at(
                facility_id=to_facility.pk,
                names={inmate.grade.name for inmate in queryset if inmate.grade is not None},
            )
            for inmate in queryset:
                spendable, held, pending = self._balances(inmate)
                to_held = transfer_excess_fen(
                    spendable_fen=spendable or 0, to_balance_cap_fen=to_facility.balance_cap_fen
                )
                rows.append(
                    {
                        "inmate": inmate,
                        "spendable": format_fen(spendable),
                        "held": format_fen(held),
                        "pending": format_fen(pending),
                        "outcome": format_fen(to_held),
                        "grade": inmate.grade.name
                        if inmate.grade is not None and inmate.grade.name in grades_there
                        else gettext("None: assign one after the transfer"),
                        "refused": gettext("Deposits are awaiting payment; it will be refused.")
                        if pending
                        else "",
                    }
                )
        return self._confirmation(
            request,
            queryset,
            template="admin/facilities/transfer.html",
            title=gettext("Transfer inmates"),
            action="transfer_inmates",
            form=form,
            rows=rows,
        )

    def _transfer(self, request, queryset, data):
        for inmate in queryset:
            try:
                moved = services.transfer_inmate(
                    inmate_id=inmate.pk,
                    to_facility=data["to_facility"],
                    staff_id=request.user.pk,
                    idempotency_key=f"transfer:{data['request_key']}:{inmate.pk}",
                )
            except DomainError as refused:
                self.message_user(request, f"{inmate}: {gettext(refused.message)}", messages.ERROR)
                continue
            # The inmate took the new facility's grade of the same name, else none.
            if moved.grade is not None:
                self.message_user(
                    request,
                    gettext(
                        "%(inmate)s transferred. Grade %(grade)s kept as the new facility's "
                        "%(grade)s."
                    )
                    % {"inmate": moved, "grade": moved.grade.name},
                )
            else:
                self.message_user(
                    request,
                    gettext("%(inmate)s transferred. No grade at the new facility: assign one.")
                    % {"inmate": moved},
                    messages.WARNING,
                )

    @admin.action(
        description=_("Release selected inmates (pay out and close their accounts)"),
        permissions=("change",),
    )
    def release_inmates(self, request, queryset):
        queryset = queryset.filter(status=Inmate.Status.ACTIVE)
        if not queryset.exists():
            return self._nothing_to_do(request)
        rows, total_fen = [], 0
        for inmate in queryset:
            spendable, held, pending = self._balances(inmate)
            paid_out = release_payout_fen(spendable_fen=spendable or 0, held_fen=held or 0)
            waits = release_needs_approval(
                payout_fen=paid_out,
                approval_threshold_fen=inmate.facility.adjustment_approval_threshold_fen,
                is_frozen=any(
                    account.is_frozen
                    for account in inmate.ledger_accounts.all()
                    if account.kind == "spendable"
                ),
            )
            total_fen += paid_out
            rows.append(
                {
                    "inmate": inmate,
                    "spendable": format_fen(spendable),
                    "held": format_fen(held),
                    "pending": format_fen(pending),
                    "outcome": format_fen(paid_out),
                    "waits": waits,
                    "what_happens": gettext("Waits for a second trust officer")
                    if waits
                    else gettext("Released now"),
                }
            )
        count, waiting = len(rows), sum(row["waits"] for row in rows)
        form = ReleaseForm(
            request.POST if "confirm_count" in request.POST else None, count=count, waiting=waiting
        )
        if form.is_bound and form.is_valid():
            self._release(request, queryset, form.cleaned_data)
            return None
        response = self._confirmation(
            request,
            queryset,
            template="admin/facilities/release.html",
            title=ngettext("Release %(count)d inmate", "Release %(count)d inmates", count)
            % {"count": count},
            action="release_inmates",
            form=form,
            rows=rows,
        )
        response.context_data["total"] = format_fen(total_fen)
        response.context_data["waiting"] = waiting
        return response

    def _release(self, request, queryset, data):
        released = waiting = 0
        for inmate in queryset:
            try:
                outcome = services.release_or_request_approval(
                    inmate_id=inmate.pk,
                    staff_id=request.user.pk,
                    reason=data.get("reason", ""),
                    idempotency_key=f"release:{inmate.pk}",
                )
            except DomainError as refused:
                self.message_user(request, f"{inmate}: {gettext(refused.message)}", messages.ERROR)
                continue
            if outcome.is_waiting:
                waiting += 1
                self.message_user(
                    request,
                    gettext(
                        "%(inmate)s: the payout waits for a second trust officer "
                        "(money request #%(id)d); nothing has been paid out yet."
                    )
                    % {"inmate": inmate, "id": outcome.waiting_request.pk},
                    messages.WARNING,
                )
            else:
                released += 1
                self.message_user(
                    request, gettext("%(inmate)s released; money paid out.") % {"inmate": inmate}
                )
        self.message_user(
            request,
            ngettext("%(count)d inmate released now.", "%(count)d inmates released now.", released)
            % {"count": released}
            + " "
            + ngettext(
                "%(count)d release waits for a second trust officer.",
                "%(count)d releases wait for a second trust officer.",
                waiting,
            )
            % {"count": waiting},
        )
