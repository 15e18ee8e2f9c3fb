"""Staff accounts and the audit trail in the admin.

People are managed by superusers (no role holds the user permissions): a staff member's roles
(groups) and facilities are set here. The audit trail (django-auditlog's ``LogEntry``) is shown
read-only, scoped to the viewer's facilities and filterable by facility, person and date."""

from allauth.account.admin import EmailAddressAdmin
from auditlog.admin import LogEntryAdmin as AuditlogLogEntryAdmin
from auditlog.models import LogEntry
from axes.admin import AccessAttemptAdmin
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from facilities.models import Facility

from .admin_scope import FacilityScopedAdmin, scope_queryset, user_facility_ids
from .models import FacilityAssignment, User


class FacilityAssignmentInline(FacilityScopedAdmin, admin.TabularInline):
    model = FacilityAssignment
    extra = 0
    verbose_name = _("facility assignment")
    verbose_name_plural = _("facilities this person works at")


@admin.register(User)
class CommissaryUserAdmin(FacilityScopedAdmin, UserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    inlines = [FacilityAssignmentInline]

    def scoped(self, queryset, request):
        """People who work at one of the viewer's facilities (a superuser sees everyone)."""
        facility_ids = user_facility_ids(request)
        if facility_ids is None:
            return queryset
        return queryset.filter(
            pk__in=FacilityAssignment.objects.filter(facility_id__in=facility_ids).values("user_id")
        )


class FacilityFilter(admin.SimpleListFilter):
    title = _("facility")
    parameter_name = "facility"

    def lookups(self, request, model_admin):
        facilities = scope_queryset(Facility.objects.order_by("name"), request.user, "pk")
        return [(str(facility.pk), facility.name) for facility in facilities]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(additional_data__facility_id=int(self.value()))
        return queryset


class ActorFilter(admin.SimpleListFilter):
    title = _("person")
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        actors = User.objects.filter(
            pk__in=model_admin.get_queryset(request).values("actor_id")
        ).order_by("username")
        return [(str(actor.pk), actor.username) for actor in actors]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(actor_id=int(self.value()))
        return queryset


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditTrailAdmin(FacilityScopedAdmin, AuditlogLogEntryAdmin):
    """Who changed what, when, from where: each entry carries the facility it concerns. An
    entry about no one facility (a failed sign-in by an unknown name, a global schedule) is
    shown to superusers only."""

    facility_field = "additional_data__facility_id"
    list_display = ("created", "resource_url", "action", "msg_short", "user_url", "remote_addr")
    list_filter = ("action", FacilityFilter, ActorFilter, "content_type")

    def get_list_filter(self, request):
        return self.list_filter  # the filters above are scoped already


# Third-party list actions declare their permission too, so a role that may only view changes
# nothing through them either (tests/admin/test_admin_registry.py checks every action).
EmailAddressAdmin.make_verified.allowed_permissions = ("change",)
AccessAttemptAdmin.cleanup_expired_attempts.allowed_permissions = ("delete",)
