from django.urls import path

from . import api

urlpatterns = [
    path(
        "models/<slug:owner>/<slug:name>/metrics",
        api.ModelMetricsApi.as_view(),
        name="api-model-metrics",
    ),
    path(
        "models/<slug:owner>/<slug:name>/errors",
        api.ModelErrorsApi.as_view(),
        name="api-model-errors",
    ),
    path("teams/<slug:team>/calls", api.TeamCallsApi.as_view(), name="api-team-calls"),
    path("platform/usage", api.PlatformUsageApi.as_view(), name="api-platform-usage"),
]
