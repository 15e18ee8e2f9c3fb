"""Root URLs: the staff admin, the family pages (``/`` and ``/family/``, sign-in under
``/accounts/``), payment callbacks and receipt verification. The kiosk API mounts here later."""

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
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("allauth.urls")),
    path("payments/", include("payments.urls")),
    path("receipts/<uuid:reference>/verify", payment_views.receipt_verify, name="receipt_verify"),
    path("", include("accounts.urls")),
]
