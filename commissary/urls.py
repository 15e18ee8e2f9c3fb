"""Root URLs: the staff admin. Depositor pages and the kiosk API mount here with their issues."""

from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from kiosk.docs import KioskApiDocsView


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


admin.site.site_header = "Commissary"
admin.site.site_title = "Commissary staff"
admin.site.index_title = "Trust accounts and facilities"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("api/kiosk/v1/", include("kiosk.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", KioskApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
