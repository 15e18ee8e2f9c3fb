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
