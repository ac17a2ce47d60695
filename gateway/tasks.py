"""Celery tasks of the gateway: run an async (or remote) invocation; deliver its webhook."""

from __future__ import annotations

from celery import shared_task
from django.db import connection, transaction
from django.utils import timezone

from execution.backends import ExecutionResult
from execution.backends.celery import hold_running_call, release_running_call
from execution.runner_service import RunnerClient, RunnerUnavailable
from marketplace.accounts.selectors import team_signing_secret
from marketplace.core import limits
from marketplace.core.webhooks import WEBHOOK_RETRY, DeliveryFailed, post_signed

from . import services
from .models import Invocation, InvocationStatus

# The names these tasks had when the gateway lived in marketplace/: messages already queued
# (and beat's schedule) name them so, and must still find them.
TASK_PREFIX = "marketplace.gateway.tasks"

# How many times (a second apart) a worker whose host's runner is not up puts a call back.
RUNNER_WAIT_RETRIES = 10


class WebhookNotDelivered(Exception):
    pass


@shared_task(
    name=f"{TASK_PREFIX}.execute_invocation",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def execute_invocation(self, request_id: str) -> None:
    """Runs on whichever worker takes it, with that host's runner, and records that worker on
    the invocation. Idempotent: only a queued invocation is claimed; a redelivered message
    finds it running or final and stops. While it runs, this worker's database session holds
    the call's lock, which tells a waiting caller the worker is alive (backends.celery)."""
    held = False
    try:
        with transaction.atomic():
            invocation = (
                Invocation.objects.select_for_update(skip_locked=True)
                .filter(pk=request_id, status=InvocationStatus.QUEUED)
                .first()
            )
            if invocation is None:
                return
            # On this worker a call the celery backend routed here runs on this host's runner.
            backend = "local" if invocation.backend == "celery" else invocation.backend
            if (
                backend == "local"
                and self.request.retries < RUNNER_WAIT_RETRIES
                and not _runner_ready()
            ):
                # This host cannot run it now (its runner is starting or down): the call stays
                # queued, back on its queue for any worker whose host can.
                raise self.retry(countdown=1, max_retries=RUNNER_WAIT_RETRIES)
            invocation.status = InvocationStatus.RUNNING
            invocation.started_at = timezone.now()
            invocation.worker = (self.request.hostname or "")[:255]
            with connection.cursor() as cursor:
                hold_running_call(cursor, request_id)
                held = True
            invocation.save(update_fields=["status", "started_at", "worker"])
        try:
            services.run_invocation(invocation, invocation.input_data, backend=backend)
        except Exception as exc:  # the outcome is recorded by run_invocation
            services.finish(
                invocation,
                ExecutionResult(
                    "failed", error={"message": str(exc), "error_type": "UnavailableError"}
                ),
            )
    finally:
        # A broken session has lost the lock with it.
        if held and connection.is_usable():
            with connection.cursor() as cursor:
                release_running_call(cursor, request_id)


def _runner_ready() -> bool:
    try:
        RunnerClient().health()
    except RunnerUnavailable:
        return False
    return True


@shared_task(
    name=f"{TASK_PREFIX}.deliver_invocation_webhook",
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(WebhookNotDelivered,),
    **WEBHOOK_RETRY,
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
    return services.invocations_reap()
