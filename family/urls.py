"""The family's pages: ``/`` is their home, the rest lives under ``/family/``."""

from django.urls import include, path

from . import views

app_name = "family"

family_patterns = [
    path("links/new", views.link_new, name="link_new"),
    path("links/<int:link_id>/deposit", views.deposit_new, name="deposit_new"),
    path("links/<int:link_id>/deposit/confirm", views.deposit_confirm, name="deposit_confirm"),
    path("deposits/", views.deposit_history, name="history"),
    path("deposits/<uuid:reference>", views.deposit_detail, name="deposit_detail"),
    path("account/", views.account, name="account"),
    path("account/data.json", views.account_data, name="account_data"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("family/", include(family_patterns)),
]
