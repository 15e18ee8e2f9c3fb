"""Root URLs: the staff admin, the family pages (``/`` and ``/family/``, sign-in under
``/accounts/``), payment callbacks and receipt verification. The staff reports
and dashboard sit under ``/admin/reports/``."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path

from payments import views as payment_views


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


admin.site.site_header = "Commissary"
admin.site.site_title = "Commissary staff"
admin.site.index_title = "Trust accounts and facilities"

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/reports/", include("reports.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("accounts/", include("allauth.urls")),
    path("payments/", include("payments.urls")),
    path("receipts/<uuid:reference>/verify", payment_views.receipt_verify, name="receipt_verify"),
    path("", include("accounts.urls")),
]
