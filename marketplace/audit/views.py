"""The audit trail pages: a team's (its owners and admins) and the platform's (staff), each
with filters, pages, and the same filtered set as CSV or JSON (?format=csv|json)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from marketplace.accounts.principals import Principal
from marketplace.core.errors import InputError

from . import exports, selectors
from .filters import action_choices
from .models import Via

PAGE_SIZE = 50
EXPORT_FORMATS = ("csv", "json")


@login_required
@require_GET
def team_audit(request, team):
    team_obj = selectors.audit_team_get(Principal.from_request(request), team)
    return _trail(request, selectors.team_events(team_obj), team=team_obj, name=team_obj.slug)


@login_required
@require_GET
def platform_audit(request):
    selectors.require_platform_admin(Principal.from_request(request))
    return _trail(request, selectors.all_events(), team=None, name="platform")


def _trail(request, events, *, team, name: str):
    fmt = request.GET.get("format", "")
    if fmt and fmt not in EXPORT_FORMATS:
        raise InputError("format: csv or json")
    error = None
    try:
        events = selectors.events_filtered(events, request.GET)
    except InputError as exc:
        if fmt:
            raise
        error, events = exc.message, events.none()
    if fmt:
        return exports.export_response(events, fmt, name=name)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "team": team,
        "page_obj": page,
        "events": page.object_list,
        "error": error,
        "filters": {
            key: request.GET.get(key, "")
            for key in ("action", "actor", "start", "end", "target", "via", "team")
        },
        "action_choices": action_choices(),
        "via_choices": Via.choices,
    }
    return render(request, "audit/trail.html", context, status=400 if error else 200)
