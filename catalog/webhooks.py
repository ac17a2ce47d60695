"""Catalogue events for CI/CD pipelines: each delivery is a POST of a JSON payload, signed
with HMAC-SHA256 of the body under the webhook's secret, retried with backoff."""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.accounts.models import Team
from marketplace.core.webhooks import DeliveryFailed, post_signed

from .models import Build, Version, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

# Queued by name: catalog/tasks.py delivers through this module, so it does not import that one.
DELIVER_WEBHOOK_TASK = "catalog.tasks.deliver_webhook"


def build_payload(build: Build) -> dict:
    model = build.model
    return {
        "model": model.full_name,
        "build": {
            "id": str(build.pk),
            "status": build.status,
            "package_hash": build.package_hash,
            "error": build.error,
            "created_at": build.created_at.isoformat(),
            "finished_at": build.finished_at.isoformat() if build.finished_at else None,
            "url": f"{settings.PUBLIC_URL}/v1/models/{model.full_name}/builds/{build.pk}",
        },
    }


def version_payload(version: Version) -> dict:
    model = version.model
    return {
        "model": model.full_name,
        "version": {
            "version": version.number,
            "visibility": version.visibility,
            "build": str(version.build_id),
            "release_notes": version.release_notes,
            "published_at": version.published_at.isoformat(),
            "endpoint": f"{settings.PUBLIC_URL}/v1/algo/{model.full_name}/{version.number}",
        },
    }


def webhook_emit(owner: Team, event: str, payload: dict) -> None:
    """Record one delivery per subscribed webhook and queue them after commit."""
    hooks = Webhook.objects.filter(owner=owner, active=True, events__contains=[event])
    deliveries = [
        WebhookDelivery.objects.create(
            webhook=hook, event=event, payload={"event": event, **payload}
        )
        for hook in hooks
    ]
    if deliveries:

        def queue():
            for delivery in deliveries:
                try:
                    current_app.send_task(
                        DELIVER_WEBHOOK_TASK,
                        args=(str(delivery.pk),),
                        queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                    )
                except Exception:
                    logger.exception("could not queue webhook delivery %s", delivery.pk)

        transaction.on_commit(queue)


def webhook_deliver(delivery_id) -> bool:
    """POST one delivery. True when delivered (now or before); raises DeliveryFailed for
    the task to retry."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.delivered_at is not None:
        return True
    delivery.attempts += 1
    try:
        delivery.last_status = post_signed(
            delivery.webhook.url,
            delivery.payload,
            secret=delivery.webhook.secret,
            event=delivery.event,
            delivery_id=str(delivery.pk),
        )
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    except DeliveryFailed as failure:
        delivery.last_status = failure.status
        delivery.last_error = str(failure)
        raise
    finally:
        delivery.save(update_fields=["attempts", "last_status", "delivered_at", "last_error"])
    return True
