"""Billing pages: the overview of the namespaces whose billing you read, a team's usage
(showback) and an owner's earnings. Figures come from billing.selectors; the CSV links point
at the /v1 report with the same parameters."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from marketplace.accounts import policies
from marketplace.accounts import selectors as account_selectors
from marketplace.accounts.principals import Principal
from marketplace.core.errors import InputError

from . import selectors

GROUP_LABELS = {
    "model": "Model",
    "version": "Version",
    "key": "API key",
    "user": "User",
    "project": "Project",
    "day": "Day",
    "status": "Status",
}
USAGE_TABS = ("model", "version", "key", "user", "project", "day")
EARNINGS_TABS = ("model", "version", "day")


@login_required
@require_GET
def overview(request):
    teams = [
        team
        for team in account_selectors.teams_for_user(request.user)
        if policies.can_read_billing(request.user, team)
    ]
    return render(request, "billing/overview.html", {"teams": teams})


@login_required
@require_GET
def team_usage(request, team):
    team_obj = selectors.billing_team_get(Principal.from_request(request), team)
    query, error = _query(request, selectors.USAGE_GROUPS, by_project=True)
    usage = selectors.usage_overview(team_obj, query)
    context = _links(team_obj, query, "usage", USAGE_TABS) | {
        "team": team_obj,
        "usage": usage,
        "error": error,
    }
    return render(request, "billing/usage.html", context)


@login_required
@require_GET
def team_earnings(request, team):
    team_obj = selectors.billing_team_get(Principal.from_request(request), team)
    query, error = _query(request, selectors.EARNINGS_GROUPS, by_project=False)
    earnings = selectors.earnings_overview(team_obj, query)
    context = _links(team_obj, query, "earnings", EARNINGS_TABS) | {
        "team": team_obj,
        "earnings": earnings,
        "error": error,
    }
    return render(request, "billing/earnings.html", context)


def _query(request, groups, *, by_project: bool):
    """The report the page asks for; on a bad parameter, this month's and the reason."""
    try:
        return selectors.report_query_from_params(
            request.GET, groups=groups, by_project=by_project
        ), None
    except InputError as error:
        return selectors.default_query(), error.message


def _params(query, **overrides) -> dict:
    params = {"range": query.preset}
    if query.preset == selectors.CUSTOM:
        params |= {"start": query.start.isoformat(), "end": query.end.isoformat()}
    params |= {"project": query.project or "", "group_by": query.group_by} | overrides
    return {name: value for name, value in params.items() if value}


def _links(team, query, kind: str, tabs) -> dict:
    """The period choices, and tab and CSV links that keep every other parameter."""
    page = reverse(f"billing:team_{kind}", args=[team.slug])
    exact = {"start": query.start.isoformat(), "end": query.end.isoformat()}
    return {
        "query": query,
        "presets": [
            (preset, label, preset == query.preset) for preset, label in selectors.PRESETS.items()
        ],
        "tabs": [
            (
                GROUP_LABELS[group],
                f"{page}?{urlencode(_params(query, group_by=group))}",
                group == query.group_by,
            )
            for group in tabs
        ],
        "csv_url": _csv_url(team, kind, _params(query, range="", **exact)),
        "csv_day_url": _csv_url(team, kind, _params(query, range="", group_by="day", **exact)),
        "group_label": GROUP_LABELS[query.group_by],
    }


def _csv_url(team, kind: str, params: dict) -> str:
    api = reverse(f"api-team-{kind}", args=[team.slug])
    return f"{api}?{urlencode(params | {'format': 'csv'})}"
