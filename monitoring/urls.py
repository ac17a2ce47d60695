from django.urls import path

from . import views

app_name = "monitoring"

# Included before the catalogue's /{owner}/{name} pages; "dashboard" is a reserved namespace.
urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("requests/", views.request_log, name="request_log"),
    path("admin-report/", views.platform_report, name="platform_report"),
    path("<slug:owner>/<slug:name>/monitoring", views.model_monitoring, name="model"),
    path("<slug:owner>/<slug:name>/monitoring/errors", views.model_errors, name="errors"),
]
