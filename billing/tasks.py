"""Billing tasks: daily rollups. Each loads by id and calls a service.

The budget alert tasks live in billing.budgets.tasks under their old billing.tasks names;
importing that module here is what registers them, since the worker autodiscovers only
each app's tasks module."""

from __future__ import annotations

from celery import shared_task

from . import rollups
from .budgets import tasks as budget_tasks  # noqa: F401


@shared_task(ignore_result=True)
def rollup_usage() -> int:
    return rollups.rollup_closed_days()
