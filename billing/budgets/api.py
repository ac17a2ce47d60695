"""/v1/teams/{team}/budget(s) and /v1/prices: budgets with their month-to-date spend, and
the compute price of each hardware class.

Budgets, like other team resources, do not exist for non-members (404). Owners, admins and
billing members read them (a key needs billing:read); owners and admins change them, from a
browser session or with a personal full-access key, so a narrowly scoped key can never lift
its own cap."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts import policies
from marketplace.accounts import selectors as account_selectors
from marketplace.accounts.models import ApiKey
from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import BILLING_READ, is_full_access
from marketplace.core.errors import AuthorizationError

from . import selectors, services
from .selectors import current_month

# -- access ----------------------------------------------------------------------------------


def _team_to_read(request, slug: str):
    team = account_selectors.team_for_member(request.user, slug)
    principal = Principal.from_request(request)
    principal.require_acts_for(team)
    principal.require_scope(BILLING_READ, "read budgets")
    if not policies.can_read_billing(request.user, team):
        raise AuthorizationError(
            f"Only owners, admins and billing members of {team.slug} can read its budgets"
        )
    return team


def _team_to_change(request, slug: str):
    team = account_selectors.team_for_member(request.user, slug)
    Principal.from_request(request).require_acts_for(team)
    _require_full_access(request, "Changing budgets")
    return team


def _require_full_access(request, what: str) -> None:
    key = request.auth
    if isinstance(key, ApiKey) and not (key.team.is_personal and is_full_access(key.scopes)):
        raise AuthorizationError(f"{what} needs a browser session or a personal full-access key")


# -- serializers ---------------------------------------------------------------------------


class BudgetAlertOutput(serializers.Serializer):
    threshold = serializers.IntegerField()
    spent = serializers.DecimalField(
        max_digits=20, decimal_places=6, help_text="Month-to-date spend when it was reached"
    )
    reached_at = serializers.DateTimeField(source="created_at")
    notified_at = serializers.DateTimeField(
        allow_null=True, help_text="When every notification went out; null while sending"
    )


class BudgetOutput(serializers.Serializer):
    project = serializers.CharField(source="budget.project", help_text="Empty: the whole team")
    scope = serializers.CharField(source="budget.scope")
    monthly_amount = serializers.DecimalField(
        source="budget.monthly_amount", max_digits=20, decimal_places=6
    )
    thresholds = serializers.ListField(child=serializers.IntegerField(), source="budget.thresholds")
    hard_cap = serializers.BooleanField(source="budget.hard_cap")
    webhook_url = serializers.CharField(source="budget.webhook_url")
    month = serializers.DateField()
    spent = serializers.DecimalField(max_digits=20, decimal_places=6)
    remaining = serializers.DecimalField(max_digits=20, decimal_places=6)
    percent_used = serializers.DecimalField(max_digits=10, decimal_places=1, coerce_to_string=False)
    thresholds_reached = serializers.ListField(child=serializers.IntegerField())
    blocked = serializers.BooleanField(help_text="Calls in this scope are refused with 402")
    alerts = BudgetAlertOutput(many=True, help_text="This month's alerts")
    created_at = serializers.DateTimeField(source="budget.created_at")
    updated_at = serializers.DateTimeField(source="budget.updated_at")


class BudgetListOutput(serializers.Serializer):
    month = serializers.DateField()
    results = BudgetOutput(many=True)


class BudgetInput(serializers.Serializer):
    monthly_amount = serializers.DecimalField(
        max_digits=20, decimal_places=6, help_text="Credits per calendar month (UTC), above 0"
    )
    thresholds = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        default=lambda: list(services.DEFAULT_THRESHOLDS),
        help_text="Percentages of the amount that each notify once a month",
    )
    hard_cap = serializers.BooleanField(
        required=False, default=False, help_text="Refuse calls with 402 once the budget is spent"
    )
    webhook_url = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Also POST each alert here, signed like invocation webhooks",
    )


class PriceOutput(serializers.Serializer):
    hardware_class = serializers.CharField()
    price_per_second = serializers.DecimalField(max_digits=20, decimal_places=9)
    effective_from = serializers.DateTimeField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()


class HardwarePricesOutput(serializers.Serializer):
    hardware_class = serializers.CharField()
    current = PriceOutput(allow_null=True, help_text="In force now; null: calls are free")
    scheduled = PriceOutput(many=True, help_text="Taking over later, soonest first")


class PriceListOutput(serializers.Serializer):
    results = HardwarePricesOutput(many=True)


class PriceInput(serializers.Serializer):
    hardware_class = serializers.CharField(max_length=32)
    price_per_second = serializers.DecimalField(max_digits=20, decimal_places=9)
    effective_from = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Now if omitted; never past"
    )
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


# -- views -------------------------------------------------------------------------------------


class BudgetListApi(APIView):
    @extend_schema(
        responses=BudgetListOutput,
        operation_id="teams_budgets_list",
        summary="A team's budgets with this month's spend and alerts",
        tags=["billing"],
    )
    def get(self, request, team):
        team_obj = _team_to_read(request, team)
        statuses = selectors.budget_statuses(team_obj)
        month = statuses[0].month if statuses else current_month()
        return Response(BudgetListOutput({"month": month, "results": statuses}).data)


class BudgetDetailApi(APIView):
    """The team's budget (`/budget`) or a project's (`/budgets/{project}`)."""

    @extend_schema(
        responses=BudgetOutput, summary="One budget with this month's spend", tags=["billing"]
    )
    def get(self, request, team, project=""):
        team_obj = _team_to_read(request, team)
        return Response(BudgetOutput(selectors.budget_status(team_obj, project)).data)

    @extend_schema(
        request=BudgetInput,
        responses={200: BudgetOutput, 201: BudgetOutput},
        summary="Set a budget (owners and admins); raising it lifts a hard cap at once",
        tags=["billing"],
    )
    def put(self, request, team, project=""):
        team_obj = _team_to_change(request, team)
        serializer = BudgetInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        budget, created = services.budget_set(
            actor=request.user, team=team_obj, project=project, **serializer.validated_data
        )
        body = BudgetOutput(selectors.budget_status(team_obj, budget.project)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        responses={204: None}, summary="Remove a budget (owners and admins)", tags=["billing"]
    )
    def delete(self, request, team, project=""):
        team_obj = _team_to_change(request, team)
        services.budget_delete(actor=request.user, budget=selectors.budget_get(team_obj, project))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PriceListApi(APIView):
    def get_permissions(self):
        if self.request.method == "GET":
            return [AllowAny()]
        return [IsAuthenticated()]

    @extend_schema(
        responses=PriceListOutput,
        summary="Compute prices per hardware class: in force now, and scheduled",
        tags=["billing"],
    )
    def get(self, request):
        return Response(PriceListOutput({"results": selectors.price_schedule()}).data)

    @extend_schema(
        request=PriceInput,
        responses={201: PriceOutput},
        summary="Schedule a compute price (platform admins); never in the past",
        tags=["billing"],
    )
    def post(self, request):
        _require_full_access(request, "Setting prices")
        serializer = PriceInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        price = services.price_set(actor=request.user, **serializer.validated_data)
        return Response(PriceOutput(price).data, status=status.HTTP_201_CREATED)
