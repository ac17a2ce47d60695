from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("audit/", views.platform_audit, name="platform"),
    path("teams/<slug:team>/audit/", views.team_audit, name="team"),
]
