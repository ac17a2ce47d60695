"""Pages of budgets and prices (included from marketplace.urls at the site root)."""

from django.urls import path

from . import views

app_name = "billing_budgets"

urlpatterns = [
    path("teams/<slug:slug>/budgets/", views.team_budgets, name="team_budgets"),
    # "pricing" is a reserved namespace slug, so no team's page can shadow this one.
    path("pricing/", views.pricing, name="pricing"),
]
