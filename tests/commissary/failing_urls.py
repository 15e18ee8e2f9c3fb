"""A URL that fails, behind the project's own error handlers (for the 500 page's test)."""

from django.urls import path

from commissary.urls import handler403, handler404, handler500, urlpatterns  # noqa: F401


def fail(request):
    raise RuntimeError("a fault on our side")


urlpatterns = [path("fail", fail), *urlpatterns]
