"""Staff screens for family depositors: deciding a family's link to an inmate (a rejection
says why) and blocking a depositor at a facility, each at the staff member's facilities only.
The models stay in ``accounts`` (see ``accounts.models``); the decisions are
``family.services``."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import FacilityScopedAdmin
from accounts.models import DepositorBlock, DepositorLink

from . import services


class LinkDecisionForm(forms.ModelForm):
    class Meta:
        model = DepositorLink
        fields = ("status", "decision_reason")

    def clean(self):
        cleaned = super().clean()
        rejected = cleaned.get("status") == DepositorLink.Status.REJECTED
        if rejected and not cleaned.get("decision_reason", "").strip():
            self.add_error("decision_reason", _("Say why the link is rejected."))
        return cleaned


@admin.register(DepositorLink)
class DepositorLinkAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    """Staff approve or reject a family's link (a rejection says why), at their facilities."""

    list_display = ("depositor_email", "inmate", "entered_inmate_number", "status", "created_at")
    list_select_related = ("depositor", "inmate")
    list_filter = ("status",)
    search_fields = ("depositor__email", "inmate__inmate_number", "entered_surname")
    form = LinkDecisionForm
    fields = (
        "depositor_email",
        "inmate",
        "entered_inmate_number",
        "entered_surname",
        "created_at",
        "status",
        "decision_reason",
        "decided_by",
        "decided_at",
    )
    readonly_fields = (
        "depositor_email",
        "inmate",
        "entered_inmate_number",
        "entered_surname",
        "created_at",
        "decided_by",
        "decided_at",
    )

    @admin.display(description=_("Depositor"), ordering="depositor__email")
    def depositor_email(self, link):
        """Depositors are known by their email (their username is never shown)."""
        return link.depositor.email

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        if obj.status == DepositorLink.Status.PENDING:
            return
        services.decide_link(
            link_id=obj.pk, status=obj.status, staff=request.user, reason=obj.decision_reason
        )


@admin.register(DepositorBlock)
class DepositorBlockAdmin(FacilityScopedAdmin, admin.ModelAdmin):
    list_display = ("depositor_email", "facility", "reason", "created_by", "created_at")
    search_fields = ("depositor__email",)
    fields = ("depositor", "facility", "reason")
    raw_id_fields = ("depositor",)

    @admin.display(description=_("Depositor"), ordering="depositor__email")
    def depositor_email(self, block):
        return block.depositor.email

    def save_model(self, request, obj, form, change):
        services.block_depositor(
            depositor_id=obj.depositor_id,
            facility_id=obj.facility_id,
            reason=obj.reason,
            staff=request.user,
        )
