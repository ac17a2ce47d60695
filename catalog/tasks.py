"""Celery tasks of the catalogue. Each loads by id and calls a service; each is idempotent."""

from celery import shared_task

from marketplace.core.webhooks import DeliveryFailed

from . import builder, services, webhooks


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_build(build_id: str) -> None:
    builder.execute_build(build_id)


@shared_task(ignore_result=True)
def reap_builds() -> int:
    return services.builds_reap()


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=8,
    autoretry_for=(DeliveryFailed,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
)
def deliver_webhook(self, delivery_id: str) -> bool:
    return webhooks.webhook_deliver(delivery_id)


@shared_task(ignore_result=True)
def refresh_popularity() -> int:
    return services.popularity_refresh()
