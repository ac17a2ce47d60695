"""The Calls pages: a team's call history, one key's, and the settings that decide what is
kept (the team's retention, a key's keeping of inputs and outputs). Members only; to
anyone else the team and its keys do not exist. Reads from monitoring.call_history."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from gateway import call_bodies
from marketplace.accounts import policies
from marketplace.accounts.selectors import team_for_member
from marketplace.accounts.services import personal_namespace_ensure
from marketplace.core.errors import ApiError, InputError

from . import call_history
from .views import _with


@login_required
@require_GET
def calls_home(request):
    """The navigation's Calls link: the history of the user's own namespace."""
    team = personal_namespace_ensure(user=request.user)
    return redirect("monitoring:team_calls", team=team.slug)


@login_required
@require_http_methods(["GET", "POST"])
def team_calls(request, team):
    team = team_for_member(request.user, team)
    if request.method == "POST":
        try:
            days = int(request.POST.get("retention_days", ""))
        except ValueError:
            messages.error(request, "Retention: a whole number of days from 1 to 90.")
        else:
            _apply(request, call_bodies.team_set_call_body_retention, team=team, days=days)
        return redirect("monitoring:team_calls", team=team.slug)
    return _render(request, team, key=None)


@login_required
@require_http_methods(["GET", "POST"])
def key_calls(request, team, key_id):
    team = team_for_member(request.user, team)
    key = call_history.team_key_get(team, key_id)
    if request.method == "POST":
        keep = request.POST.get("keep_call_bodies") == "on"
        _apply(request, call_bodies.api_key_set_keep_call_bodies, key=key, keep=keep)
        return redirect("monitoring:key_calls", team=team.slug, key_id=key.pk)
    return _render(request, team, key=key)


def _apply(request, service, **arguments) -> None:
    try:
        service(actor=request.user, **arguments)
    except ApiError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Saved.")


def _render(request, team, *, key):
    error = None
    try:
        filters = call_history.call_filters(request.GET, key=key)
        page = call_history.team_calls(team, filters, before=request.GET.get("before") or None)
    except InputError as exc:
        error = exc.message
        filters = call_history.CallFilters(key=key.prefix if key else None)
        page = call_history.team_calls(team, filters)
    path = request.path
    params = filters.as_params()
    if key is not None:
        params.pop("key")
    context = {
        "team": team,
        "key": key,
        "keys": call_history.team_keys(team),
        "page": page,
        "filters": filters,
        "statuses": call_history.STATUS_CHOICES,
        "error": error,
        "can_administer": policies.can_administer(request.user, team),
        "is_first_page": not request.GET.get("before"),
        "first_page_url": _with(path, params),
        "next_url": _with(path, params | {"before": page.next_cursor or ""}),
        "team_calls_url": reverse("monitoring:team_calls", kwargs={"team": team.slug}),
        "max_retention_days": call_bodies.MAX_RETENTION_DAYS,
    }
    return render(request, "monitoring/calls.html", context, status=400 if error else 200)
