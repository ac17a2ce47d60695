"""Celery tasks of the gateway: run an async (or remote) invocation; deliver its webhook."""

from __future__ import annotations

import hashlib
import hmac

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.core.webhooks import DeliveryFailed, post_signed
from marketplace.execution.backends import ExecutionResult

from . import limits, services
from .models import Invocation, InvocationStatus


class WebhookNotDelivered(Exception):
    pass


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def execute_invocation(request_id: str) -> None:
    """Runs on whichever worker takes it, with that host's runner. Idempotent: only a queued
    invocation is claimed; a redelivered message finds it running or final and stops."""
    with transaction.atomic():
        invocation = (
            Invocation.objects.select_for_update(skip_locked=True)
            .filter(pk=request_id, status=InvocationStatus.QUEUED)
            .first()
        )
        if invocation is None:
            return
        invocation.status = InvocationStatus.RUNNING
        invocation.started_at = timezone.now()
        invocation.save(update_fields=["status", "started_at"])
    # On this worker a call the celery backend routed here runs on this host's runner.
    backend = "local" if invocation.backend == "celery" else invocation.backend
    try:
        services.run_invocation(invocation, invocation.input_data, backend=backend)
    except Exception as exc:  # the outcome is recorded by run_invocation
        services.finish(
            invocation,
            ExecutionResult(
                "failed", error={"message": str(exc), "error_type": "UnavailableError"}
            ),
        )


def signing_secret(team_id) -> str:
    """Per-namespace secret for invocation webhooks, derived from SECRET_KEY; team admins
    read it from /v1/teams/{team}/signing-secret."""
    return hmac.new(
        settings.SECRET_KEY.encode(), f"invocation-webhooks:{team_id}".encode(), hashlib.sha256
    ).hexdigest()


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=8,
    autoretry_for=(WebhookNotDelivered,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
)
def deliver_invocation_webhook(self, request_id: str) -> None:
    from .api import InvocationOutput

    invocation = Invocation.objects.filter(pk=request_id).first()
    if invocation is None or not invocation.webhook_url or invocation.webhook_delivered_at:
        return
    payload = InvocationOutput(invocation, context={"is_member": False}).data
    try:
        post_signed(
            invocation.webhook_url,
            payload,
            secret=signing_secret(invocation.caller_team_id),
            event="invocation.finished",
            delivery_id=str(invocation.pk),
        )
    except DeliveryFailed as failure:
        raise WebhookNotDelivered(str(failure)) from failure
    Invocation.objects.filter(pk=request_id).update(webhook_delivered_at=timezone.now())


@shared_task(ignore_result=True)
def purge_rate_limits() -> int:
    return limits.purge_expired()


@shared_task(ignore_result=True)
def reap_invocations() -> int:
    return services.invocations_reap()
