"""Budget alerts: one per budget, month and threshold (a unique row), sent to the team's
owners and admins by e-mail and, when the budget has one, to a signed webhook."""

from __future__ import annotations

import logging
from datetime import date

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.accounts.models import Membership
from marketplace.accounts.policies import ADMIN_ROLES
from marketplace.core.webhooks import DeliveryFailed, post_signed

from .budgets import current_month, month_spent
from .models import Budget, BudgetAlert

logger = logging.getLogger(__name__)


class NotificationNotSent(Exception):
    pass


def budget_threshold_notify(*, budget_id: int, month: date, threshold: int) -> bool:
    """Record the alert and notify; True when this call sent it. A retry after a failed
    send finds the alert unsent and sends again; a duplicate finds it sent and stops."""
    budget = Budget.objects.select_related("team").filter(pk=budget_id).first()
    if budget is None or threshold not in budget.thresholds:
        return False
    spent = month_spent(budget.team, budget.project, month)
    try:
        with transaction.atomic():
            alert, _ = BudgetAlert.objects.get_or_create(
                budget=budget, month=month, threshold=threshold, defaults={"spent": spent}
            )
    except IntegrityError:
        alert = BudgetAlert.objects.get(budget=budget, month=month, threshold=threshold)
    with transaction.atomic():
        alert = BudgetAlert.objects.select_for_update().get(pk=alert.pk)
        if alert.notified_at is not None:
            return False
        _send(budget, alert)
        alert.notified_at = timezone.now()
        alert.save(update_fields=["notified_at"])
    return True


def _send(budget: Budget, alert: BudgetAlert) -> None:
    team = budget.team
    subject = (
        f"[{team.slug}] {alert.threshold}% of the {alert.month:%B %Y} budget "
        f"for {budget.scope} reached"
    )
    body = (
        f"{team.slug} has spent {alert.spent} of its {budget.monthly_amount} credits budget "
        f"for {budget.scope} in {alert.month:%B %Y} ({alert.threshold}% threshold).\n"
        + (
            "Calls will be refused with 402 once the budget is spent (hard cap).\n"
            if budget.hard_cap
            else ""
        )
        + f"\nUsage report: {settings.PUBLIC_URL}/teams/{team.slug}/usage/\n"
    )
    recipients = list(
        Membership.objects.filter(team=team, role__in=ADMIN_ROLES)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if recipients:
        send_mail(subject, body, None, recipients)
    if budget.webhook_url:
        from marketplace.gateway.tasks import signing_secret

        try:
            post_signed(
                budget.webhook_url,
                {
                    "event": "budget.threshold",
                    "team": team.slug,
                    "project": budget.project,
                    "month": alert.month.isoformat(),
                    "threshold": alert.threshold,
                    "spent": str(alert.spent),
                    "budget": str(budget.monthly_amount),
                    "hard_cap": budget.hard_cap,
                },
                secret=signing_secret(team.pk),
                event="budget.threshold",
                delivery_id=f"budget-{budget.pk}-{alert.month:%Y-%m}-{alert.threshold}",
            )
        except DeliveryFailed as failure:
            raise NotificationNotSent(str(failure)) from failure


def budget_alerts_sweep() -> int:
    """Queue the alerts of thresholds already reached this month that have none sent (their
    task was lost, or the budget was lowered below the spend). Returns how many."""
    from .budgets import _queue_alert

    month = current_month()
    queued = 0
    for budget in Budget.objects.select_related("team"):
        spent = month_spent(budget.team, budget.project, month)
        done = set(
            BudgetAlert.objects.filter(
                budget=budget, month=month, notified_at__isnull=False
            ).values_list("threshold", flat=True)
        )
        for threshold in budget.thresholds:
            if threshold not in done and spent >= budget.monthly_amount * threshold / 100:
                _queue_alert(budget.pk, month, threshold)
                queued += 1
    return queued
