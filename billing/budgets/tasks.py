"""Budget alert tasks and their queueing: the task that sends one alert, the thresholds a
usage record crossed, the catch-up after a budget changes, and the periodic sweep that heals
lost alerts. Each task loads by id and calls a service.

The tasks keep the names they were registered under as billing.tasks (a broker may hold
queued ones, and the beat schedule names the sweep); billing.tasks imports this module so
the worker's autodiscovery registers them."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from celery import shared_task
from django.conf import settings
from django.db import transaction

from marketplace.core.webhooks import WEBHOOK_RETRY

from ..models import Budget, BudgetAlert
from . import notifications
from .selectors import current_month, month_spent, team_budgets

logger = logging.getLogger(__name__)


@shared_task(
    name="billing.tasks.notify_budget_threshold",
    bind=True,
    ignore_result=True,
    autoretry_for=(notifications.NotificationNotSent,),
    **WEBHOOK_RETRY,
)
def notify_budget_threshold(self, budget_id: int, month: str, threshold: int) -> None:
    notifications.budget_threshold_notify(
        budget_id=budget_id, month=date.fromisoformat(month), threshold=threshold
    )


@shared_task(name="billing.tasks.sweep_budget_alerts", ignore_result=True)
def sweep_budget_alerts() -> int:
    return budget_alerts_sweep()


def thresholds_crossed(record, *, month: date, spent: dict[str, Decimal]) -> None:
    """After a record is added to the month's totals: queue one notification per threshold
    the addition crossed (the alert row makes a second notification impossible)."""
    budgets = [b for b in team_budgets(record.team_id) if b.project in spent]
    for budget in budgets:
        new = spent[budget.project]
        old = new - record.total
        for threshold in budget.thresholds:
            level = budget.monthly_amount * threshold / 100
            if old < level <= new:
                queue_alert(budget.pk, month, threshold)


def queue_alert(budget_id: int, month: date, threshold: int) -> None:
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


def budget_alerts_sweep() -> int:
    """Queue the alerts of thresholds already reached this month that have none sent (their
    task was lost, or the budget was lowered below the spend). Returns how many."""
    month = current_month()
    return sum(
        budget_alerts_catch_up(budget, month=month)
        for budget in Budget.objects.select_related("team")
    )


def budget_alerts_catch_up(budget: Budget, *, month: date | None = None) -> int:
    """Queue (after commit) an alert for each threshold of one budget that the month's spend
    has reached and whose alert is not sent yet; the alert row keeps it to one per month."""
    month = month or current_month()
    spent = month_spent(budget.team, budget.project, month)
    done = set(
        BudgetAlert.objects.filter(
            budget=budget, month=month, notified_at__isnull=False
        ).values_list("threshold", flat=True)
    )
    queued = 0
    for threshold in budget.thresholds:
        if threshold not in done and spent >= budget.monthly_amount * threshold / 100:
            queue_alert(budget.pk, month, threshold)
            queued += 1
    return queued
