"""Outgoing webhooks, signed: one JSON POST whose X-Marketplace-Signature is
"sha256=" + HMAC-SHA256(secret, body) in hex. Used for catalogue events and for finished
invocations; callers record the outcome and retry."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request

SIGNATURE_HEADER = "X-Marketplace-Signature"
EVENT_HEADER = "X-Marketplace-Event"
DELIVERY_HEADER = "X-Marketplace-Delivery"


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed(
    url: str, payload: dict, *, secret: str, event: str, delivery_id: str, timeout: float = 10
) -> int:
    """POST `payload`; returns the HTTP status of a 2xx answer, raises DeliveryFailed
    otherwise (an error status, or no answer)."""
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    request = urllib.request.Request(  # noqa: S310 - http(s) checked when the URL was given
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "modelplace-webhooks/1",
            SIGNATURE_HEADER: sign(secret, body),
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"HTTP {error.code}", status=error.code) from None
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryFailed(str(error)[:500]) from None
