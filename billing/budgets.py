"""Budgets: monthly amounts per team (or project), alert thresholds that notify once per
month each, and an optional hard cap that refuses calls with 402 until the next month or a
raised budget."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from marketplace.core.errors import InputError, PaymentRequiredError

from .models import Budget, MonthlySpend

logger = logging.getLogger(__name__)

MAX_THRESHOLDS = 10


def current_month() -> date:
    return timezone.now().date().replace(day=1)


def month_spent(team, project: str = "", month: date | None = None) -> Decimal:
    row = MonthlySpend.objects.filter(
        team=team, project=project, month=month or current_month()
    ).first()
    return row.total if row is not None else Decimal(0)


def cap_check(team, project: str) -> None:
    """Raise 402 when a hard-capped budget of the team, or of this call's project, is spent
    for the current month. One indexed query."""
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


def thresholds_crossed(record, *, month: date, spent: dict[str, Decimal]) -> None:
    """After a record is added to the month's totals: queue one notification per threshold
    the addition crossed (the alert row makes a second notification impossible)."""
    budgets = Budget.objects.filter(team_id=record.team_id, project__in=list(spent))
    for budget in budgets:
        new = spent[budget.project]
        old = new - record.total
        for threshold in budget.thresholds:
            level = budget.monthly_amount * threshold / 100
            if old < level <= new:
                queue_alert(budget.pk, month, threshold)


def queue_alert(budget_id: int, month: date, threshold: int) -> None:
    from .tasks import notify_budget_threshold

    def send():
        try:
            notify_budget_threshold.apply_async(
                (budget_id, month.isoformat(), threshold),
                queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            )
        except Exception:
            # The periodic sweep (budgets_sweep) finds thresholds whose alert is missing.
            logger.exception("could not queue the budget alert of budget %s", budget_id)

    transaction.on_commit(send)


def parse_thresholds(values) -> list[int]:
    try:
        thresholds = sorted({int(v) for v in values})
    except (TypeError, ValueError):
        raise InputError("thresholds: whole percentages, e.g. [50, 80, 100]") from None
    if len(thresholds) > MAX_THRESHOLDS or any(not 1 <= t <= 1000 for t in thresholds):
        raise InputError(f"thresholds: at most {MAX_THRESHOLDS} percentages between 1 and 1000")
    return thresholds
