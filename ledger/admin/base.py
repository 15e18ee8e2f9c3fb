"""What every journal screen shares: read-only, facility-scoped, CSV export of the scoped
rows."""

from django.contrib import admin
from import_export.admin import ExportMixin

from accounts.admin_scope import FacilityScopedAdmin
from commissary import replica
from commissary.spreadsheets import SpreadsheetCSV


class ScopedExportMixin(ExportMixin):
    """CSV export of the admin list as it stands (scope, search, filters), for whoever may
    view it."""

    formats = [SpreadsheetCSV]  # UTF-8 with BOM, no formulas
    skip_export_form = True

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def export_action(self, request, *args, **kwargs):
        # An export can wait: it reads on the read replica when one is fit
        # (commissary.replica), like the reports.
        with replica.reads_that_can_wait():
            return super().export_action(request, *args, **kwargs)

    def get_valid_export_item_pks(self, request):
        return self.get_queryset(request).values_list("pk", flat=True)


class NoWrites:
    """Nobody adds, changes or deletes through this admin or inline, superusers included."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NoWrites, FacilityScopedAdmin, admin.ModelAdmin):
    def get_fields(self, request, obj=None):
        # The view page shows amounts in yuan: an ``x_fen`` field gives way to the admin's
        # ``x`` display (the one its list shows) where there is one.
        return [
            name.removesuffix("_fen")
            if isinstance(name, str) and name.endswith("_fen") and hasattr(self, name[:-4])
            else name
            for name in super().get_fields(request, obj)
        ]
