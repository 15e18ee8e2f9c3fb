"""Root URLs: the staff admin. Depositor pages and the kiosk API mount here with their issues."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView


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
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
