"""List filters that the staff home's work queue links to."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.models import FacilityAssignment

from ..models import StaffRequest


class AwaitingYouFilter(admin.SimpleListFilter):
    """Requests waiting for a second trust officer that the viewer could approve: not their
    own, at a facility they are assigned to (a superuser approves only where assigned)."""

    title = _("waiting for")
    parameter_name = "awaiting"

    def lookups(self, request, model_admin):
        return [("you", _("your approval"))]

    def queryset(self, request, queryset):
        if self.value() != "you":
            return queryset
        assigned = FacilityAssignment.objects.filter(user_id=request.user.pk).values("facility_id")
        return queryset.filter(
            state=StaffRequest.State.REQUESTED, needs_approval=True, facility_id__in=assigned
        ).exclude(requested_by_id=request.user.pk)
