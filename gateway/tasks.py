"""Celery tasks of the gateway, thin wrappers around `lifecycle`: run a queued invocation on a
worker; deliver its webhook; purge drained rate limits and call history past its retention;
reap abandoned calls."""

from __future__ import annotations

from celery import shared_task
from celery.worker.control import control_command
from django.utils import timezone

from execution.runner_service import RunnerClient, RunnerUnavailable
from marketplace.accounts.selectors import team_signing_secret
from marketplace.core import limits
from marketplace.core.webhooks import WEBHOOK_RETRY, DeliveryFailed, post_signed

from . import call_bodies, lifecycle, refusals
from .api import InvocationOutput
from .models import Invocation

# The names these tasks had when the gateway lived in marketplace/: messages already queued
# (and beat's schedule) name them so, and must still find them. The two the lifecycle queues
# by name take theirs from it.
TASK_PREFIX = "marketplace.gateway.tasks"


class WebhookNotDelivered(Exception):
    pass


@shared_task(
    name=lifecycle.EXECUTE_INVOCATION_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def execute_invocation(self, request_id: str) -> None:
    """Claim and run a queued invocation on this worker (`lifecycle.execute_queued`). While
    this host's runner is not up, the call goes back on its queue, a second apart, up to
    `lifecycle.RUNNER_WAIT_RETRIES` times; then it is run anyway and fails clearly."""
    try:
        lifecycle.execute_queued(
            request_id,
            worker=self.request.hostname or "",
            put_back_if_runner_down=self.request.retries < lifecycle.RUNNER_WAIT_RETRIES,
        )
    except lifecycle.RunnerNotReady:
        raise self.retry(countdown=1, max_retries=lifecycle.RUNNER_WAIT_RETRIES) from None


@shared_task(
    name=lifecycle.DELIVER_WEBHOOK_TASK,
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(WebhookNotDelivered,),
    **WEBHOOK_RETRY,
)
def deliver_invocation_webhook(self, request_id: str) -> None:
    invocation = Invocation.objects.filter(pk=request_id).first()
    if invocation is None or not invocation.webhook_url or invocation.webhook_delivered_at:
        return
    payload = InvocationOutput(invocation, context={"is_member": False}).data
    try:
        post_signed(
            invocation.webhook_url,
            payload,
            secret=team_signing_secret(invocation.caller_team_id),
            event="invocation.finished",
            delivery_id=str(invocation.pk),
        )
    except DeliveryFailed as failure:
        raise WebhookNotDelivered(str(failure)) from failure
    Invocation.objects.filter(pk=request_id).update(webhook_delivered_at=timezone.now())


@shared_task(name=f"{TASK_PREFIX}.purge_rate_limits", ignore_result=True)
def purge_rate_limits() -> int:
    return limits.purge_expired()


@shared_task(name=f"{TASK_PREFIX}.reap_invocations", ignore_result=True)
def reap_invocations() -> int:
    return lifecycle.invocations_reap()


@shared_task(name=f"{TASK_PREFIX}.purge_call_history", ignore_result=True)
def purge_call_history() -> dict:
    """Kept call bodies past their team's retention, and refused calls past
    REFUSED_CALL_RETENTION_DAYS."""
    return {
        "kept_bodies": call_bodies.kept_call_bodies_purge(),
        "refused_calls": refusals.refused_calls_purge(),
    }


@control_command(args=[("request_id", str)], signature="<request_id>")
def cancel_invocation(state, request_id):
    """Broadcast by `lifecycle.cancel_on_workers` to every worker: kill the call on this host's
    runner if it is running there. Registered when a worker imports this module (Celery imports
    every app's tasks at start)."""
    try:
        return {"canceled": RunnerClient().cancel(request_id)}
    except RunnerUnavailable:
        return {"canceled": False}
