"""Pages: a team's budgets (/teams/{team}/budgets/) and the compute prices (/pricing/)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from marketplace.accounts import policies
from marketplace.accounts import selectors as account_selectors
from marketplace.core.errors import ApiError, AuthorizationError

from . import selectors, services
from .forms import BudgetForm, PriceForm
from .selectors import current_month


def _report(request, form, error: ApiError) -> None:
    """A service's refusal next to the field it names, else as a message at the top."""
    field = next((name for name in (error.fields or {}) if name in form.fields), None)
    if field:
        message = error.message.split(": ", 1)[1] if ": " in error.message else error.message
        form.add_error(field, message)
    else:
        messages.error(request, error.message)


def _budget_form_for(team, project: str) -> BudgetForm:
    """The form filled with an existing budget (to change it), or empty for a new one."""
    budget = selectors.budget_get(team, project)
    return BudgetForm(
        initial={
            "project": budget.project,
            "monthly_amount": selectors.decimal_text(budget.monthly_amount),
            "thresholds": ", ".join(str(t) for t in budget.thresholds),
            "hard_cap": budget.hard_cap,
            "webhook_url": budget.webhook_url,
        }
    )


@login_required
@require_http_methods(["GET", "POST"])
def team_budgets(request, slug):
    team = account_selectors.team_for_member(request.user, slug)
    if not policies.can_read_billing(request.user, team):
        raise AuthorizationError(
            f"Only owners, admins and billing members of {team.slug} can see its budgets"
        )
    form = BudgetForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "save":
            form = BudgetForm(request.POST)
            if form.is_valid():
                try:
                    budget, created = services.budget_set(
                        actor=request.user, team=team, **form.cleaned_data
                    )
                except ApiError as error:
                    _report(request, form, error)
                else:
                    verb = "set" if created else "changed"
                    messages.success(
                        request,
                        f"Budget for {budget.scope} {verb}: "
                        f"{selectors.credits_text(budget.monthly_amount)} credits a month.",
                    )
                    return redirect("billing_budgets:team_budgets", slug=team.slug)
        elif action == "delete":
            try:
                budget = selectors.budget_get(team, request.POST.get("project", ""))
                services.budget_delete(actor=request.user, budget=budget)
            except ApiError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, f"Budget for {budget.scope} removed.")
                return redirect("billing_budgets:team_budgets", slug=team.slug)
        else:
            messages.error(request, "Unknown action.")
    elif "edit" in request.GET:
        try:
            form = _budget_form_for(team, request.GET["edit"])
        except ApiError as error:
            messages.error(request, error.message)
    context = {
        "team": team,
        "month": current_month(),
        "statuses": selectors.budget_statuses(team),
        "can_change": policies.can_administer(request.user, team),
        "form": form,
        "editing": "edit" in request.GET and form.initial.get("monthly_amount") is not None,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "billing/budgets.html", context, status=status)


@require_http_methods(["GET", "POST"])
def pricing(request):
    is_admin = request.user.is_authenticated and request.user.is_staff
    form = PriceForm() if is_admin else None
    if request.method == "POST":
        if not is_admin:
            raise AuthorizationError("Only platform administrators can set compute prices")
        form = PriceForm(request.POST)
        if form.is_valid():
            try:
                price = services.price_set(actor=request.user, **form.cleaned_data)
            except ApiError as error:
                _report(request, form, error)
            else:
                amount = selectors.decimal_text(price.price_per_second)
                messages.success(
                    request,
                    f"{price.hardware_class}: {amount} credits a second from "
                    f"{price.effective_from:%Y-%m-%d %H:%M:%S} UTC.",
                )
                return redirect("billing_budgets:pricing")
    context = {"schedule": selectors.price_schedule(), "form": form, "is_admin": is_admin}
    status = 400 if form is not None and form.is_bound and form.errors else 200
    return render(request, "billing/pricing.html", context, status=status)
