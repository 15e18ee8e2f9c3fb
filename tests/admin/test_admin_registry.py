"""Every admin screen of the project is facility-scoped, and every list action anywhere in
the admin declares the permission it needs (a role that may only view changes nothing)."""

from django.contrib import admin

from accounts.admin_scope import FacilityScopedAdmin

PROJECT_APPS = {"accounts", "facilities", "ledger", "catalog", "payments", "kiosk", "auditlog"}


def test_every_project_model_admin_and_inline_uses_the_facility_scope():
    unscoped = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        if not isinstance(model_admin, FacilityScopedAdmin):
            unscoped.append(model._meta.label)
        for inline in model_admin.inlines:
            if not issubclass(inline, FacilityScopedAdmin):
                unscoped.append(f"{model._meta.label} inline {inline.__name__}")
    assert unscoped == []


def test_every_admin_action_declares_its_permission():
    undeclared = []
    for model, model_admin in admin.site._registry.items():
        for action in model_admin.actions or ():
            function = action if callable(action) else getattr(model_admin, action)
            if not getattr(function, "allowed_permissions", None):
                undeclared.append(f"{model._meta.label}.{getattr(function, '__name__', action)}")
        site_actions = dict(admin.site.actions)
        for name in site_actions:
            if not getattr(site_actions[name], "allowed_permissions", None):
                undeclared.append(f"site.{name}")
    assert undeclared == []


# Rows that belong to no facility and name nobody: the kinds of object in the audit trail.
GLOBAL_MODELS = {"contenttypes.ContentType"}


def _every_project_admin():
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        yield model, model_admin
        for inline_class in model_admin.inlines:
            yield inline_class.model, inline_class(model, admin.site)


def test_every_related_list_filter_offers_only_values_in_the_scoped_list(rf):
    """A filter on a relation, directly or through a path (``inmate__housing_unit``), lists only
    what the staff member's scoped list holds, never another facility's names."""
    from django.contrib.admin.utils import get_fields_from_path

    request = rf.get("/")
    unscoped = []
    for model, model_admin in _every_project_admin():
        if not isinstance(model_admin, admin.ModelAdmin):  # inlines have no list
            continue
        for list_filter in model_admin.get_list_filter(request):
            if isinstance(list_filter, str):
                field = get_fields_from_path(model, list_filter)[-1]
                if field.is_relation and field.related_model._meta.label not in GLOBAL_MODELS:
                    unscoped.append(f"{model._meta.label}.{list_filter}")
            elif isinstance(list_filter, tuple | list):
                filter_class = list_filter[1]
                if issubclass(filter_class, admin.RelatedFieldListFilter) and not issubclass(
                    filter_class, admin.RelatedOnlyFieldListFilter
                ):
                    unscoped.append(f"{model._meta.label}.{list_filter[0]}")
    assert unscoped == []


def test_every_raw_id_widget_and_choice_is_scoped(rf, db):
    """A raw-id widget's label and every foreign key's choices come from the scoped queryset."""
    from django.contrib.admin.widgets import ManyToManyRawIdWidget

    from accounts.admin_scope import ScopedForeignKeyRawIdWidget
    from tests.factories import FacilityFactory, StaffFactory

    request = rf.get("/")
    request.user = StaffFactory(facilities=[FacilityFactory()])
    unscoped = []
    for model, model_admin in _every_project_admin():
        for name in model_admin.raw_id_fields:
            db_field = model._meta.get_field(name)
            if db_field.related_model._meta.label == "accounts.User":
                continue  # people are not per facility (the field's own rules apply)
            formfield = model_admin.formfield_for_dbfield(db_field, request)
            if not isinstance(
                formfield.widget, ScopedForeignKeyRawIdWidget | ManyToManyRawIdWidget
            ):
                unscoped.append(f"{model._meta.label}.{name}")
    assert unscoped == []
