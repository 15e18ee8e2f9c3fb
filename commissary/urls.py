"""Root URLs: the staff admin, the family pages (``/`` and ``/family/``, sign-in under
``/accounts/``), payment callbacks and receipt verification, the kiosk API (``/api/kiosk/v1/``,
its OpenAPI schema at ``/api/schema/`` and docs at ``/api/docs/``). The staff reports and
dashboard sit under ``/admin/reports/``. ``/healthz`` and ``/readyz`` answer load balancers
(commissary.health), ``/metrics`` the operators' scraper (commissary.metrics)."""

from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView

from accounts import signin
from commissary import health, metrics
from kiosk.docs import KioskApiDocsView
from payments import views as payment_views

admin.site.site_header = _("Commissary")
admin.site.site_title = _("Commissary staff")
admin.site.index_title = _("Trust accounts and facilities")

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/reports/", include("reports.urls")),
    # Before the admin's own URLs: its sign-in, limited per address (accounts.signin).
    path("admin/login/", signin.admin_login),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/kiosk/v1/", include("kiosk.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", KioskApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/", include("allauth.urls")),
    path("payments/", include("payments.urls")),
    path("receipts/<uuid:reference>/verify", payment_views.receipt_verify, name="receipt_verify"),
    path("", include("family.urls")),
]

handler404 = "commissary.error_pages.page_not_found"
handler403 = "commissary.error_pages.permission_denied"
handler500 = "commissary.error_pages.server_error"
