"""Reads for budgets and prices: the month's spend, the hard cap check, a budget with its
month-to-date spend and alerts, and the compute prices of each hardware class (in force now,
and scheduled)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from catalog.models import Model
from marketplace.accounts.models import Team
from marketplace.core.change_feed import TableCache, frozen, thawed
from marketplace.core.errors import NotFoundError, PaymentRequiredError

from ..models import Budget, BudgetAlert, ComputePrice, MonthlySpend

PERCENT = Decimal("0.1")


def current_month() -> date:
    return timezone.now().date().replace(day=1)


def month_spent(team, project: str = "", month: date | None = None) -> Decimal:
    row = MonthlySpend.objects.filter(
        team=team, project=project, month=month or current_month()
    ).first()
    return row.total if row is not None else Decimal(0)


_budgets_by_team = TableCache("budgets", {"billing_budget"}, max_entries=16384)


def team_budgets(team_id: int) -> list[Budget]:
    """The team's budgets (the whole team's and its projects'), each call its own instances
    (the rows may be remembered, see core/change_feed.py)."""
    snapshots = _budgets_by_team.get(
        team_id, lambda: tuple(frozen(b) for b in Budget.objects.filter(team_id=team_id))
    )
    return [thawed(snapshot) for snapshot in snapshots]


def cap_check(team, project: str) -> None:
    """Raise 402 when a hard-capped budget of the team, or of this call's project, is spent
    for the current month. No query for a team without such a budget, else one indexed
    query."""
    if not any(b.hard_cap and b.project in ("", project) for b in team_budgets(team.pk)):
        return
    month = current_month()
    spent = MonthlySpend.objects.filter(
        team=OuterRef("team"), project=OuterRef("project"), month=month
    ).values("total")[:1]
    exhausted = (
        Budget.objects.filter(team=team, hard_cap=True, project__in=["", project])
        .annotate(spent=Subquery(spent))
        .filter(spent__gte=F("monthly_amount"))
        .order_by("project")
        .first()
    )
    if exhausted is not None:
        raise PaymentRequiredError(
            f"the monthly budget of {exhausted.monthly_amount} credits for "
            f"{exhausted.scope} of {team.slug} is spent; calls resume next month or when an "
            "admin raises the budget"
        )


def decimal_text(value: Decimal, *, min_places: int = 0) -> str:
    """Every significant place of a stored amount, in plain notation (never 1E+2), at least
    `min_places`: 25.000000 -> "25", 0.001000000 -> "0.001", 6.5 -> "6.50" with two."""
    whole, _, fraction = f"{value:f}".partition(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{fraction}" if fraction else whole


def credits_text(value: Decimal) -> str:
    return decimal_text(value, min_places=2)


@dataclass
class BudgetStatus:
    """A budget as of one month: what was spent against it and which alerts went out."""

    budget: Budget
    month: date
    spent: Decimal
    alerts: list[BudgetAlert] = field(default_factory=list)

    @property
    def amount_text(self) -> str:
        return credits_text(self.budget.monthly_amount)

    @property
    def spent_text(self) -> str:
        return credits_text(self.spent)

    @property
    def remaining_text(self) -> str:
        return credits_text(self.remaining)

    @property
    def over_text(self) -> str:
        """How far the spend went past the budget ("" when it did not)."""
        over = self.spent - self.budget.monthly_amount
        return credits_text(over) if over > 0 else ""

    @property
    def percent_used(self) -> Decimal:
        return (self.spent * 100 / self.budget.monthly_amount).quantize(
            PERCENT, rounding=ROUND_HALF_UP
        )

    @property
    def remaining(self) -> Decimal:
        return max(self.budget.monthly_amount - self.spent, Decimal(0))

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.budget.monthly_amount

    @property
    def blocked(self) -> bool:
        """Calls in this budget's scope are refused with 402 (hard cap, budget spent)."""
        return self.budget.hard_cap and self.exhausted

    @property
    def thresholds_reached(self) -> list[int]:
        amount = self.budget.monthly_amount
        return [t for t in self.budget.thresholds if self.spent >= amount * t / 100]

    @property
    def alerts_sent(self) -> list[BudgetAlert]:
        return [alert for alert in self.alerts if alert.notified_at is not None]

    @property
    def bar_percent(self) -> Decimal:
        """percent_used capped at 100, for a progress bar."""
        return min(self.percent_used, Decimal(100))


def budget_statuses(team: Team, *, month: date | None = None) -> list[BudgetStatus]:
    """Every budget of a team, the team's own first, then its projects by name. Three
    queries whatever their number."""
    month = month or current_month()
    budget_list = list(Budget.objects.filter(team=team).select_related("team").order_by("project"))
    spent = dict(
        MonthlySpend.objects.filter(
            team=team, month=month, project__in=[b.project for b in budget_list]
        ).values_list("project", "total")
    )
    alerts: dict[int, list[BudgetAlert]] = {}
    for alert in BudgetAlert.objects.filter(budget__team=team, month=month).order_by("threshold"):
        alert.spent_text = credits_text(alert.spent)
        alerts.setdefault(alert.budget_id, []).append(alert)
    return [
        BudgetStatus(
            budget=budget,
            month=month,
            spent=spent.get(budget.project, Decimal(0)),
            alerts=alerts.get(budget.pk, []),
        )
        for budget in budget_list
    ]


def budget_get(team: Team, project: str = "") -> Budget:
    budget = Budget.objects.select_related("team").filter(team=team, project=project).first()
    if budget is None:
        scope = f"project {project!r}" if project else "the whole team"
        raise NotFoundError(f"{team.slug} has no budget for {scope}")
    return budget


def budget_status(team: Team, project: str = "", *, month: date | None = None) -> BudgetStatus:
    budget = budget_get(team, project)
    return next(s for s in budget_statuses(team, month=month) if s.budget.pk == budget.pk)


@dataclass
class HardwarePrices:
    hardware_class: str
    current: ComputePrice | None
    scheduled: list[ComputePrice]
    previous: list[ComputePrice]


def price_schedule(*, now: datetime | None = None) -> list[HardwarePrices]:
    """Per hardware class (every priced class, and every class a model runs on): the price in
    force now (None: free until one is set), the ones scheduled after it, soonest first, and
    the ones it replaced, newest first."""
    now = now or timezone.now()
    by_class: dict[str, list[ComputePrice]] = {}
    for price in ComputePrice.objects.select_related("created_by").order_by(
        "hardware_class", "effective_from"
    ):
        price.price_text = decimal_text(price.price_per_second)
        by_class.setdefault(price.hardware_class, []).append(price)
    for hardware_class in Model.objects.values_list("hardware_class", flat=True).distinct():
        by_class.setdefault(hardware_class, [])
    schedule = []
    for hardware_class in sorted(by_class):
        prices = by_class[hardware_class]
        started = [p for p in prices if p.effective_from <= now]
        schedule.append(
            HardwarePrices(
                hardware_class=hardware_class,
                current=started[-1] if started else None,
                scheduled=[p for p in prices if p.effective_from > now],
                previous=list(reversed(started[:-1])),
            )
        )
    return schedule
