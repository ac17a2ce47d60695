"""Who is acting, for the audit trail: the current request (bound by AuditContextMiddleware for
each request, in a context variable, so services need not pass it along) and what can be read
from it: the user, the channel (session, key), the key's prefix, the client's IP address, its
user agent and the request id.

API keys are checked by DRF inside the view, after every middleware has run; DRF then sets
`user` and `auth` on the underlying Django request too, so reading them when an event is
recorded (not when the request starts) sees the key. Outside a request (a Celery task, a
management command) the channel is "system".
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass

from django.http import HttpRequest

from marketplace.accounts.models import ApiKey
from marketplace.core.addresses import client_ip

from .models import Via

USER_AGENT_LENGTH = 256

_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def bind(request: HttpRequest) -> Token:
    return _current_request.set(request)


def unbind(token: Token) -> None:
    _current_request.reset(token)


def current_request() -> HttpRequest | None:
    return _current_request.get()


@dataclass(frozen=True)
class Actor:
    """Everything the trail records about who did something and from where."""

    user: object | None  # a User, or None
    via: str
    key_prefix: str = ""
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""


def actor_for(
    request: HttpRequest | None = None, *, user=None, principal=None, via: str | None = None
) -> Actor:
    """Who acts: `user` (or the principal's, or the request's), through the principal's key,
    the request's key (DRF's `request.auth`) or its session. With no request, the system."""

    request = request if request is not None else current_request()
    key = getattr(principal, "key", None)
    if user is None and principal is not None:
        user = principal.user
    if request is None:
        return Actor(
            user=user,
            via=via or Via.SYSTEM,
            key_prefix=key.prefix if key is not None else "",
        )
    if key is None and isinstance(getattr(request, "auth", None), ApiKey):
        key = request.auth
    request_user = getattr(request, "user", None)
    signed_in = request_user is not None and request_user.is_authenticated
    if user is None and signed_in:
        user = request_user
    if via is None:
        if key is not None:
            via = Via.KEY
        elif signed_in:
            via = Via.SESSION
        else:
            via = Via.ANONYMOUS
    return Actor(
        user=user,
        via=via,
        key_prefix=key.prefix if key is not None else "",
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH],
        request_id=str(getattr(request, "request_id", "") or "")[:64],
    )
