"""/v1 routes of budgets and prices (included from marketplace.urls under v1/)."""

from django.urls import path

from . import api

urlpatterns = [
    path("teams/<slug:team>/budget", api.BudgetDetailApi.as_view(), name="api-team-budget"),
    path("teams/<slug:team>/budgets", api.BudgetListApi.as_view(), name="api-team-budgets"),
    path(
        "teams/<slug:team>/budgets/<path:project>",
        api.BudgetDetailApi.as_view(),
        name="api-project-budget",
    ),
    path("prices", api.PriceListApi.as_view(), name="api-prices"),
]
