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
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from facilities.models import Facility

from . import (
    admin_libraries,  # noqa: F401 (names the libraries' admin pages)
    audit,
    audit_display,
    audit_export,
)
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


class EventFilter(admin.SimpleListFilter):
    """Sign-ins, failed sign-ins, lock-outs, downloads and other events that are not an edit
    of a record (``additional_data.event``)."""

    title = _("event")
    parameter_name = "event"

    def lookups(self, request, model_admin):
        return [(event, label) for event, label in audit.EVENT_LABELS.items()]

    def queryset(self, request, queryset):
        if self.value() in audit.EVENT_LABELS:
            return queryset.filter(additional_data__event=self.value())
        return queryset


class ObjectTypeFilter(admin.SimpleListFilter):
    """What an entry is about (an inmate, an order, a person), by the model's own name in the
    reader's language; only the kinds found in the viewer's entries."""

    title = _("object type")
    parameter_name = "type"

    def lookups(self, request, model_admin):
        type_ids = model_admin.get_queryset(request).values("content_type_id").distinct()
        kinds = []
        for content_type in ContentType.objects.filter(pk__in=type_ids):
            model = content_type.model_class()
            name = model._meta.verbose_name if model is not None else content_type.model
            kinds.append((str(content_type.pk), capfirst(str(name))))
        return sorted(kinds, key=lambda kind: kind[1])

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(content_type_id=int(self.value()))
        return queryset


admin.site.unregister(LogEntry)


@admin.register(LogEntry)
class AuditTrailAdmin(FacilityScopedAdmin, AuditlogLogEntryAdmin):
    """Who changed what, when, from where: each entry carries the facility it concerns. An
    entry about no one facility (a failed sign-in by an unknown name, a global schedule) is
    shown to superusers only."""

    facility_field = "additional_data__facility_id"
    list_display = ("created", "resource_url", "action", "msg_short", "user_url", "remote_addr")
    list_filter = (
        FacilityFilter,
        ActorFilter,
        ObjectTypeFilter,
        ("timestamp", admin.DateFieldListFilter),
        "action",
        EventFilter,
    )
    search_fields = ("object_repr", "actor__username", "actor_email")
    readonly_fields = ("created", "resource_url", "action", "user_url", "remote_addr", "msg")
    fieldsets = [
        (None, {"fields": ["created", "user_url", "remote_addr", "resource_url"]}),
        (_("Changes"), {"fields": ["action", "msg"]}),
    ]

    def get_list_filter(self, request):
        return self.list_filter  # the filters above are scoped already

    # The trail is append-only (a database trigger refuses it too): nobody, superusers
    # included, adds, edits or deletes an entry here, and no list action offers it.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("Created"), ordering="timestamp")
    def created(self, entry):
        """The time in the site's local time and the reader's date format, the same on the
        list and on the entry's page (auditlog's own returns the datetime, which the entry's
        page printed raw: ``2026-12-05 10:52:00.123456+08:00``)."""
        return formats.localize(timezone.template_localtime(entry.timestamp))

    # In words and in the reader's language (``accounts.audit_display``).
    @admin.display(description=_("Changes"))
    def msg_short(self, entry):
        return audit_display.summary(entry)

    @admin.display(description=_("Changes"))
    def msg(self, entry):
        lines = audit_display.change_lines(entry)
        if not lines:
            return gettext("No changes")
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", (line for line in lines)
        )
        return format_html(
            '<table class="audit-changes"><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            gettext("Field"),
            gettext("From"),
            gettext("To"),
            rows,
        )

    @admin.display(description=_("User"))
    def user_url(self, entry):
        if entry.actor_id is None:
            return entry.actor_email or gettext("system")
        return super().user_url(entry)

    @admin.display(description=_("Resource"))
    def resource_url(self, entry):
        model = entry.content_type.model_class()
        kind = capfirst(str(model._meta.verbose_name)) if model is not None else ""
        return format_html("{} · {}", kind, entry.object_repr)

    def get_urls(self):
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv_view),
            name="auditlog_logentry_export",
        )
        return [export, *super().get_urls()]

    def export_csv_view(self, request):
        """The list as filtered on the page (facility, person, type, date), as CSV: UTF-8
        with a BOM for spreadsheet programs, formula-looking cells neutralised, streamed in
        chunks so a long trail never sits in memory."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        entries = (
            changelist.get_queryset(request)
            .select_related("content_type", "actor")
            .order_by("-timestamp", "-pk")
        )
        facility_names = dict(
            scope_queryset(Facility.objects.all(), request.user, "pk").values_list("pk", "name")
        )
        answer = StreamingHttpResponse(
            audit_export.csv_lines(entries, facility_names), content_type="text/csv; charset=utf-8"
        )
        answer["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
        return answer


# Third-party list actions declare their permission too, so a role that may only view changes
# nothing through them either (tests/admin/test_admin_registry.py checks every action).
EmailAddressAdmin.make_verified.allowed_permissions = ("change",)
AccessAttemptAdmin.cleanup_expired_attempts.allowed_permissions = ("delete",)
