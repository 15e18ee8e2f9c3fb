"""The public price lists (signed out): ``/prices/<facility code>/``."""

from django.urls import path

from . import views

app_name = "prices"
urlpatterns = [
    path("<slug:code>/", views.price_list, name="list"),
    path("<slug:code>/<str:sku>/", views.price_history, name="history"),
]
