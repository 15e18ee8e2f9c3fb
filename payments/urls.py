from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("<slug:provider>/callback", views.callback, name="callback"),
    path("sandbox/pay/<str:reference>", views.sandbox_pay, name="sandbox_pay"),
    path("<slug:provider>/pay/<str:reference>", views.provider_pay, name="provider_pay"),
]
