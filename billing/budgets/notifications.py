"""Budget alerts: one per budget, month and threshold (a unique row), sent to the team's
owners and admins by e-mail and, when the budget has one, to a signed webhook."""

from __future__ import annotations

import logging
import smtplib
from datetime import date

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from marketplace.accounts.models import Membership
from marketplace.accounts.policies import ADMIN_ROLES
from marketplace.accounts.selectors import team_signing_secret
from marketplace.core.webhooks import DeliveryFailed, post_signed

from ..models import Budget, BudgetAlert
from .selectors import month_spent

logger = logging.getLogger(__name__)


class NotificationNotSent(Exception):
    pass


def budget_threshold_notify(*, budget_id: int, month: date, threshold: int) -> bool:
    """Record the alert and notify; True when this call finished sending it.

    The e-mail goes out once, in the transaction that creates the alert row: a failed send
    leaves no row (the task retries, and the sweep finds the threshold unalerted). The
    webhook is then posted until it is delivered, and `notified_at` says both are done. A
    retry after a failed webhook, or a duplicate task, finds the row and mails nobody again."""
    budget = Budget.objects.select_related("team").filter(pk=budget_id).first()
    if budget is None or threshold not in budget.thresholds:
        return False
    spent = month_spent(budget.team, budget.project, month)
    if spent < budget.monthly_amount * threshold / 100:
        return False  # the budget was raised after the threshold was crossed
    with transaction.atomic():
        alert, created = BudgetAlert.objects.get_or_create(
            budget=budget, month=month, threshold=threshold, defaults={"spent": spent}
        )
        if created:
            _mail(budget, alert)
    with transaction.atomic():
        alert = BudgetAlert.objects.select_for_update().get(pk=alert.pk)
        if alert.notified_at is not None:
            return False
        _post_webhook(budget, alert)
        alert.notified_at = timezone.now()
        alert.save(update_fields=["notified_at"])
    return True


def _mail(budget: Budget, alert: BudgetAlert) -> None:
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
    if not recipients:
        return
    try:
        send_mail(subject, body, None, recipients)
    except (OSError, smtplib.SMTPException) as failure:
        raise NotificationNotSent(f"e-mail not sent: {failure}") from failure


def _post_webhook(budget: Budget, alert: BudgetAlert) -> None:
    if not budget.webhook_url:
        return
    team = budget.team
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
            secret=team_signing_secret(team.pk),
            event="budget.threshold",
            delivery_id=f"budget-{budget.pk}-{alert.month:%Y-%m}-{alert.threshold}",
        )
    except DeliveryFailed as failure:
        raise NotificationNotSent(str(failure)) from failure
