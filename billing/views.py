from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from marketplace.accounts import policies, selectors


@login_required
@require_GET
def overview(request):
    teams = [
        team
        for team in selectors.teams_for_user(request.user)
        if policies.can_read_billing(request.user, team)
    ]
    return render(request, "billing/overview.html", {"teams": teams})
