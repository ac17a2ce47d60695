"""Outgoing webhooks, signed: one JSON POST whose X-Marketplace-Signature is
"sha256=" + HMAC-SHA256(secret, body) in hex. Used for catalogue events and for finished
invocations; callers record the outcome and retry."""

from __future__ import annotations

import hashlib
import hmac
import json

from marketplace.core.outbound import OutboundError, outbound_request

SIGNATURE_HEADER = "X-Marketplace-Signature"
EVENT_HEADER = "X-Marketplace-Event"
DELIVERY_HEADER = "X-Marketplace-Delivery"

# How a task that posts a webhook retries a failed delivery: up to 8 more times, backing off
# exponentially from 5 seconds to at most 10 minutes, with jitter. Celery task options.
WEBHOOK_RETRY = {
    "max_retries": 8,
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
}


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(
    url: str, payload: dict, *, secret: str, event: str, delivery_id: str, timeout: float = 10
) -> int:
    """POST `payload` under the outbound policy; returns the HTTP status of a 2xx answer,
    raises DeliveryFailed otherwise (a refused destination, an error status, a redirect, or no
    answer), with at most one short line of what the receiver said."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    try:
        response = outbound_request(
            "POST",
            url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "modelplace-webhooks/1",
                SIGNATURE_HEADER: sign(secret, body),
                EVENT_HEADER: event,
                DELIVERY_HEADER: delivery_id,
            },
            timeout=timeout,
        )
    except OutboundError as error:
        raise DeliveryFailed(str(error)) from None
    if not response.ok:
        raise DeliveryFailed(response.summary(), status=response.status)
    return response.status
