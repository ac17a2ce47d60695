from django.urls import path

from . import call_views, views

app_name = "monitoring"

# Included before the catalogue's /{owner}/{name} pages; "dashboard" is a reserved namespace.
urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("requests/", views.request_log, name="request_log"),
    path("calls/", call_views.calls_home, name="calls"),
    path("teams/<slug:team>/calls/", call_views.team_calls, name="team_calls"),
    path("teams/<slug:team>/keys/<uuid:key_id>/calls/", call_views.key_calls, name="key_calls"),
    path("admin-report/", views.platform_report, name="platform_report"),
    path("<slug:owner>/<slug:name>/monitoring", views.model_monitoring, name="model"),
    path("<slug:owner>/<slug:name>/monitoring/errors", views.model_errors, name="errors"),
]
