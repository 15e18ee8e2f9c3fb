from django.contrib import admin
from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", admin.site.admin_view(views.report_index), name="index"),
    path("dashboard/", admin.site.admin_view(views.dashboard), name="dashboard"),
    path("dashboard/chart/<slug:kind>.svg", admin.site.admin_view(views.chart), name="chart"),
    path("preferences/", admin.site.admin_view(views.preferences), name="preferences"),
    path("<slug:slug>/", admin.site.admin_view(views.report), name="report"),
]
