from django.urls import path

from . import api

urlpatterns = [
    path("teams/<slug:team>/audit", api.TeamAuditApi.as_view(), name="api-team-audit"),
]
