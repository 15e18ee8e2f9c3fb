"""The one facility scope of the staff admin: a staff member sees and touches only the
facilities assigned to them (``accounts.selectors.facility_ids_for``); a superuser sees all.

Every ModelAdmin (and inline) mixes in ``FacilityScopedAdmin``, which narrows, from one place:
- the list, the detail page, history and delete (``get_queryset``): an object outside the scope
  answers exactly as a missing one does, with a 404;
- search, date drill-down, actions and exports (they all start from ``get_queryset``);
- autocomplete (Django asks the *target* model's admin for its queryset, which is scoped too);
- the choices of every foreign key and many-to-many field on a form, scoped as the target
  model's own admin scopes its list (a global catalogue's categories stay offered to all);
- the label a raw-id widget shows next to the typed id (``?inmate=<id>`` on an add page):
  blank for an object outside the scope, as for a missing one;
- related-field list filters, also through a path (``inmate__housing_unit``): only values that
  occur in the scoped list are offered.

How a model reaches its facility is found by ``facility_path_for``: the ``Facility`` itself, a
``facility`` field, or an ``inmate`` field; a model with none of those is hidden from everyone
but superusers unless its admin says how (``facility_field``) or that it is global.
"""

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.widgets import ForeignKeyRawIdWidget, ManyToManyRawIdWidget
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404

from .selectors import facility_ids_for

AUTO = object()


def facility_path_for(model) -> str | None:
    """The lookup path from ``model`` to its facility's id, or None when it has none."""
    if model._meta.label == "facilities.Facility":
        return "pk"
    names = {field.name for field in model._meta.get_fields()}
    if "facility" in names:
        return "facility"
    if "inmate" in names:
        return "inmate__facility"
    if model._meta.label == "ledger.Entry":
        return "transaction__facility"
    if model._meta.label == "auditlog.LogEntry":
        return "additional_data__facility_id"
    return None


def scope_queryset(queryset, user, path: str | None, *, include_global: bool = False):
    """``queryset`` narrowed to what ``user`` may see. ``include_global`` also keeps rows that
    belong to no facility (a reconciliation of the whole ledger)."""
    facility_ids = facility_ids_for(user)
    if facility_ids is None:
        return queryset
    if path is None:
        return queryset.none()
    visible = Q(**{f"{path}__in": facility_ids})
    if include_global:
        visible |= Q(**{f"{path}__isnull": True})
    return queryset.filter(visible)


def user_facility_ids(request) -> set[int] | None:
    """The facility ids of the signed-in user, read once per request."""
    if not hasattr(request, "_commissary_facility_ids"):
        request._commissary_facility_ids = facility_ids_for(request.user)
    return request._commissary_facility_ids


class ScopedForeignKeyRawIdWidget(ForeignKeyRawIdWidget):
    """The raw-id widget, whose label (an inmate's number and full name) is looked up only
    among the objects the staff member may choose: an id outside the scope shows no label,
    exactly as a missing id does."""

    def __init__(self, rel, admin_site, *, queryset, attrs=None, using=None):
        super().__init__(rel, admin_site, attrs=attrs, using=using)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            is_visible = self.queryset.filter(**{key: value}).exists()
        except (ValueError, TypeError, ValidationError):
            is_visible = False
        if not is_visible:
            return "", ""
        return super().label_and_url_for_value(value)


def scope_choices(queryset, request, model, admin_site=admin.site):
    """``queryset`` of ``model`` narrowed as ``model``'s own admin narrows its list (so a global
    catalogue stays whole, an inmate list keeps to the staff member's facilities); a model with
    no scoped admin is narrowed by its path to a facility."""
    model_admin = admin_site._registry.get(model)
    if isinstance(model_admin, FacilityScopedAdmin):
        return model_admin.scoped(queryset, request)
    return scope_queryset(queryset, request.user, facility_path_for(model))


class FacilityScopedAdmin:
    """Mix into every ModelAdmin and InlineModelAdmin before the Django base class."""

    facility_field = AUTO  # or a lookup path to the facility, or None for "no facility"
    include_global = False  # also show rows that belong to no facility
    scope_global = False  # the model is not per facility (schedules): no narrowing

    def scope_path(self) -> str | None:
        if self.facility_field is AUTO:
            return facility_path_for(self.model)
        return self.facility_field

    def scoped(self, queryset, request):
        if self.scope_global:
            return queryset
        return scope_queryset(
            queryset, request.user, self.scope_path(), include_global=self.include_global
        )

    def get_queryset(self, request):
        return self.scoped(super().get_queryset(request), request)

    def _scope_formfield(self, formfield, db_field, request):
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = scope_choices(
                formfield.queryset, request, db_field.related_model, self.admin_site
            )
            # (a many-to-many raw-id widget shows no label to scope)
            if isinstance(formfield.widget, ForeignKeyRawIdWidget) and not isinstance(
                formfield.widget, ManyToManyRawIdWidget
            ):
                formfield.widget = ScopedForeignKeyRawIdWidget(
                    db_field.remote_field,
                    self.admin_site,
                    queryset=formfield.queryset,
                    attrs=formfield.widget.attrs,
                    using=formfield.widget.db,
                )
        return formfield

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.related_model._meta.label == "accounts.User":
            return formfield  # people are not per facility; the field's own rules apply
        return self._scope_formfield(formfield, db_field, request)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        return self._scope_formfield(formfield, db_field, request)

    def get_list_filter(self, request):
        """Related-field filters list only values found in the scoped list, never another
        facility's name."""
        scoped_filters = []
        for list_filter in super().get_list_filter(request):
            if isinstance(list_filter, str):
                field = get_fields_from_path(self.model, list_filter)[-1]
                if field.is_relation:
                    list_filter = (list_filter, admin.RelatedOnlyFieldListFilter)
            elif isinstance(list_filter, tuple | list) and list_filter[1] in (
                admin.RelatedFieldListFilter,
            ):
                list_filter = (list_filter[0], admin.RelatedOnlyFieldListFilter)
            scoped_filters.append(list_filter)
        return scoped_filters

    def get_scoped_object_or_404(self, request, object_id):
        """For custom views: the object if it exists and is in scope, else 404."""
        found = self.get_object(request, str(object_id))
        if found is None:
            raise Http404
        return found

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index with "doesn't exist" for a missing id; a 404 for both
        # missing and out-of-scope objects says the same and tells nobody which one it was.
        raise Http404
