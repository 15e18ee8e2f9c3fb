"""The site's own 404, 403 and 500 pages, translated, for the family pages and the staff admin
(a path under ``/admin/`` gets the admin's look, with its header and language switch).

The 500 page renders from its template alone, with no request context: context processors
read the session and the user from the database, which may be what failed. The language
chosen for the request (``LocaleMiddleware``) is still active, so it is translated.
"""

from django.contrib import admin
from django.http import HttpResponseServerError
from django.template import loader
from django.template.response import TemplateResponse
from django.views import defaults


def _for_staff(request) -> bool:
    return request.path.startswith("/admin/")


def _admin_context(request) -> dict:
    return {**admin.site.each_context(request), "title": ""}


def page_not_found(request, exception):
    if _for_staff(request):
        return _render(request, "admin/404.html", 404)
    return defaults.page_not_found(request, exception, template_name="404.html")


def permission_denied(request, exception):
    if _for_staff(request):
        return _render(request, "admin/403.html", 403)
    return defaults.permission_denied(request, exception, template_name="403.html")


def _render(request, template_name: str, status: int):
    answer = TemplateResponse(request, template_name, _admin_context(request), status=status)
    return answer.render()


def server_error(request):
    template = loader.get_template("500.html")
    return HttpResponseServerError(
        template.render({"home": "/admin/" if _for_staff(request) else "/"})
    )
