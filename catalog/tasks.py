"""Celery tasks of the catalogue. Each loads by id and calls a service; each is idempotent."""

from celery import shared_task

from marketplace.core.webhooks import WEBHOOK_RETRY, DeliveryFailed

from . import builder, services, webhooks


@shared_task(
    name=services.RUN_BUILD_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def run_build(build_id: str) -> None:
    builder.execute_build(build_id)


@shared_task(ignore_result=True)
def reap_builds() -> int:
    return services.builds_reap()


@shared_task(
    name=webhooks.DELIVER_WEBHOOK_TASK,
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(DeliveryFailed,),
    **WEBHOOK_RETRY,
)
def deliver_webhook(self, delivery_id: str) -> bool:
    return webhooks.webhook_deliver(delivery_id)


@shared_task(ignore_result=True)
def refresh_popularity() -> int:
    return services.popularity_refresh()
