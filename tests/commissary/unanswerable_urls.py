"""A URL Django cannot answer: its view fails and so does the error page, so the exception
leaves the application and gunicorn answers 500 itself (tests/commissary/test_gunicorn_logs.py).
An error page can fail so in production too, e.g. when its template cannot be loaded."""

from django.urls import path

from commissary.urls import handler403, handler404, urlpatterns  # noqa: F401


def fail(request):
    raise RuntimeError("a fault on our side")


def handler500(request):
    raise RuntimeError("and the error page fails too")


urlpatterns = [path("fail", fail), *urlpatterns]
