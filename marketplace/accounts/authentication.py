"""API key authentication for DRF, accepting the three header forms of the v1 API:
`Authorization: Simple <key>`, `Authorization: Bearer <key>` and the bare key (what the
Algorithmia Python client sends)."""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication

from marketplace.core.errors import AuthenticationError, RateLimitError

from . import login_throttle
from .services import api_key_authenticate

_SCHEMES = ("simple", "bearer")


def key_from_header(header: str) -> str | None:
    """The raw key in an Authorization header value, or None if it carries no key form."""
    header = (header or "").strip()
    if not header:
        return None
    parts = header.split()
    if len(parts) == 2 and parts[0].lower() in _SCHEMES:
        return parts[1]
    if len(parts) == 1:
        return parts[0]
    return None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        raw_key = key_from_header(header)
        if raw_key is None:
            if header.split()[0].lower() == "basic":
                return None  # leave Basic auth to other authenticators
            raw_key = header  # malformed: let the key check reject it with a clear message
        try:
            key = api_key_authenticate(raw_key)
        except AuthenticationError:
            lockout = login_throttle.bad_key_used(request)
            if lockout is not None:
                raise RateLimitError(
                    "Too many requests with an invalid API key from your address; retry in "
                    f"{login_throttle.human_wait(lockout.retry_after)}",
                    headers={"Retry-After": str(lockout.retry_after)},
                ) from None
            raise
        return key.created_by, key

    def authenticate_header(self, request) -> str:
        return 'Simple realm="api"'
