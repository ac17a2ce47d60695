"""Billing tasks: budget notifications, the healing sweep behind them, and daily rollups.
Each loads by id and calls a service."""

from __future__ import annotations

from datetime import date

from celery import shared_task

from . import notifications, rollups


@shared_task(
    bind=True,
    ignore_result=True,
    autoretry_for=(notifications.NotificationNotSent,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
)
def notify_budget_threshold(self, budget_id: int, month: str, threshold: int) -> None:
    notifications.budget_threshold_notify(
        budget_id=budget_id, month=date.fromisoformat(month), threshold=threshold
    )


@shared_task(ignore_result=True)
def sweep_budget_alerts() -> int:
    return notifications.budget_alerts_sweep()


@shared_task(ignore_result=True)
def rollup_usage() -> int:
    return rollups.rollup_closed_days()
