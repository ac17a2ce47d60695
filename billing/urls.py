from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("billing/", views.overview, name="overview"),
    path("teams/<slug:team>/usage/", views.team_usage, name="team_usage"),
    path("teams/<slug:team>/earnings/", views.team_earnings, name="team_earnings"),
]
