from django.urls import path

from . import api

urlpatterns = [
    path("teams/<slug:team>/usage", api.TeamUsageApi.as_view(), name="api-team-usage"),
    path("teams/<slug:team>/earnings", api.TeamEarningsApi.as_view(), name="api-team-earnings"),
]
