"""The address a request came from, read the same way wherever it is counted or recorded
(log-in throttles, the audit trail)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: REMOTE_ADDR, unless the deployment says how many proxies in
    front of it append to X-Forwarded-For (TRUSTED_PROXY_COUNT); then the address the
    outermost trusted proxy saw. Anything that is not an IP address is ignored, never stored."""
    remote = _valid_ip(request.META.get("REMOTE_ADDR"))
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if not forwarded:
        return remote
    # Each trusted proxy appended the address it received the request from; the entries
    # before the ones they added were sent by the client and prove nothing.
    candidate = forwarded[-proxies] if len(forwarded) >= proxies else forwarded[0]
    return _valid_ip(candidate) or remote


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
