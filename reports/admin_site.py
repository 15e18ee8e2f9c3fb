"""The staff admin's site: its home is the viewer's work queue (``reports.work_queue``), not
the model list, which stays one click away at ``/admin/models/``. The scheduler's tables
(django-celery-beat), the sign-in lock-outs (django-axes) and other machinery are listed for
superusers only; no role holds their permissions either (``accounts.roles``)."""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext

from . import selectors, work_queue

# Apps whose models only superusers see in the admin's lists and menus.
MACHINERY_APPS = frozenset(
    {"django_celery_beat", "axes", "sessions", "contenttypes", "auth", "account", "sites"}
)


class StaffAdminSite(admin.AdminSite):
    index_template = "admin/work_queue.html"

    def get_urls(self):
        return [
            path("models/", self.admin_view(self.model_list), name="model_list"),
        ] + super().get_urls()

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if request.user.is_superuser:
            return app_list
        return [app for app in app_list if app["app_label"] not in MACHINERY_APPS]

    def index(self, request, extra_context=None):
        now = timezone.now()
        lines = work_queue.work_queue_for(request.user, now=now)
        context = {
            "work_queue": lines,
            "anything_waits": work_queue.anything_waits(lines),
            "now": now,
            "disabled_schedules": (
                selectors.disabled_money_schedules()
                if request.user.has_perm("ledger.view_transaction")
                else []
            ),
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)

    def model_list(self, request):
        """The stock admin home: every model the viewer may see, by app."""
        context = {
            **self.each_context(request),
            "title": gettext("All screens"),
            "subtitle": None,
            "app_list": self.get_app_list(request),
        }
        request.current_app = self.name
        return TemplateResponse(request, "admin/index.html", context)
