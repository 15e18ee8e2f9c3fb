"""Django's admin with the staff site of ``reports.admin_site`` as ``admin.site`` (named in
``INSTALLED_APPS`` in place of ``django.contrib.admin``)."""

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    default_site = "reports.admin_site.StaffAdminSite"
