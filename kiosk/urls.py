"""The kiosk API's paths (no trailing slash, as the contract fixes them). Anything else under
the prefix answers 404 in the API's envelope rather than as an HTML page."""

from django.http import JsonResponse
from django.urls import path, re_path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from . import api
from .errors import envelope


@csrf_exempt  # the API uses no cookies, so there is no cross-site request to forge
def unknown_path(request, rest=""):
    return JsonResponse(envelope("not_found", _("Not found.")), status=404)


app_name = "kiosk"
urlpatterns = [
    path("sessions", api.SessionsView.as_view(), name="sessions"),
    path("sessions/current", api.CurrentSessionView.as_view(), name="current-session"),
    path("me/balance", api.BalanceView.as_view(), name="balance"),
    path("me/transactions", api.TransactionsView.as_view(), name="transactions"),
    path("catalog", api.CatalogView.as_view(), name="catalog"),
    path("orders", api.OrdersView.as_view(), name="orders"),
    path("orders/<int:order_id>", api.OrderView.as_view(), name="order"),
    # [\s\S], not ".": a path with an encoded newline must land here too, not on Django's HTML 404.
    re_path(r"^(?P<rest>[\s\S]*)$", unknown_path),
]
