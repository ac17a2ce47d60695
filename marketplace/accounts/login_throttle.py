"""Throttling of credential guessing: failed log-ins per username and per client address, and
requests with a bad API key per client address.

The counts live in the platform's shared limiter (`marketplace.core.limits.get_limiter()`:
Redis or PostgreSQL), so every web process on every host sees the same ones, with the same
GCRA arithmetic: a subject allowed L failures per window W may fail L times at once, and after
that once more every W/L seconds; the lockout ends by itself, entirely after W.

Log-in. Only failures are counted (a user who logs in often is never slowed down), but the
lockout is checked before the password is: while a username or an address is locked out, a
log-in is answered 429 without looking at the password, so guessing the right one during the
lockout gets the attacker nothing. The check is the same whether the account exists or not,
so the answer reveals nothing about it. The username is counted in lower case and hashed, so
the limiter's state holds no user names. Attempts that race past the check together are
bounded by the number of requests the web server handles at once.

API keys. A valid key is never slowed down and costs nothing extra; each request whose key is
refused is counted against its address, and once over the limit it is answered 429 instead of
401. Keys are long random secrets, so this is not about guessing one; it stops a client (or
a scanner) hammering the key lookup.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from marketplace.core.addresses import client_ip
from marketplace.core.limits import Subject, get_limiter

from . import events
from .models import Team

DEFAULT_WINDOW_SECONDS = 900
USERNAME_SUBJECT = "login-username"
IP_SUBJECT = "login-ip"
BAD_KEY_SUBJECT = "bad-key-ip"
SUBJECT_NAMES = (USERNAME_SUBJECT, IP_SUBJECT, BAD_KEY_SUBJECT)


@dataclass(frozen=True)
class Lockout:
    """A refused attempt: how long until the next one is allowed, and which subjects
    ("username", "ip") are over their limit."""

    retry_after: int
    limited_by: tuple[str, ...]


def window_seconds() -> int:
    return max(1, int(getattr(settings, "LOGIN_RATE_LIMIT_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)))


def normalise_username(username: str | None) -> str:
    return str(username or "").strip().lower()[:150]


# -- log-in ------------------------------------------------------------------------------------


def login_lockout(request: HttpRequest, username: str | None) -> Lockout | None:
    """Whether a log-in attempt for `username` from this request's address must be refused
    now, without counting it. Call before checking the password."""
    return _lockout(_login_subjects(request, username))


def login_failed(request: HttpRequest, username: str | None) -> None:
    """Count one failed log-in against the username and the address."""
    _charge(_login_subjects(request, username))


def login_throttled(request: HttpRequest, username: str | None, lockout: Lockout) -> None:
    """Record a refused attempt in the audit trail (in the account's owner's trail too, when
    the account exists; the answer to the caller is the same either way)."""
    user_model = get_user_model()
    tried = str(username or "")[:150]
    user = (
        user_model.objects.filter(**{user_model.USERNAME_FIELD: tried}).first() if tried else None
    )
    events.announce(
        events.LOGIN_THROTTLED,
        request=request,
        team=Team.objects.filter(personal_owner=user).first() if user is not None else None,
        target_type="user",
        target_id=str(user.pk) if user is not None else "",
        target_repr=tried,
        after={
            "username": tried,
            "known_user": user is not None,
            "limited_by": list(lockout.limited_by),
            "retry_after": lockout.retry_after,
        },
    )


def _login_subjects(request: HttpRequest, username: str | None) -> list[tuple[str, Subject]]:
    subjects = []
    per_username = int(getattr(settings, "LOGIN_RATE_LIMIT_PER_USERNAME", 10))
    name = normalise_username(username)
    if per_username > 0 and name:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        subjects.append(
            ("username", Subject(USERNAME_SUBJECT, f"{USERNAME_SUBJECT}:{digest}", per_username))
        )
    per_ip = int(getattr(settings, "LOGIN_RATE_LIMIT_PER_IP", 50))
    ip = client_ip(request)
    if per_ip > 0 and ip:
        subjects.append(("ip", Subject(IP_SUBJECT, f"{IP_SUBJECT}:{ip}", per_ip)))
    return subjects


# -- API keys ----------------------------------------------------------------------------------


def bad_key_used(request: HttpRequest) -> Lockout | None:
    """Count one request with a refused API key against its address; a Lockout when the
    address is over its limit (answer 429 then instead of 401)."""
    limit = int(getattr(settings, "API_KEY_FAILURES_PER_IP", 60))
    ip = client_ip(request)
    if limit <= 0 or not ip:
        return None
    subjects = [("ip", Subject(BAD_KEY_SUBJECT, f"{BAD_KEY_SUBJECT}:{ip}", limit))]
    charged = _charge(subjects)
    return None if all(charged) else _lockout(subjects)


# -- the arithmetic ----------------------------------------------------------------------------


def _lockout(subjects: list[tuple[str, Subject]]) -> Lockout | None:
    if not subjects:
        return None
    cost = window_seconds() * 1000
    # A hit of cost 0 charges nothing and returns each subject's level drained to now: one
    # more failure is allowed while level + cost fits in the bucket of limit * cost.
    levels = get_limiter().hit([subject for _, subject in subjects], 0)
    waits = {}
    for (label, subject), (_, level) in zip(subjects, levels, strict=True):
        excess = level + cost - subject.limit * cost
        if excess > 0:
            waits[label] = math.ceil(math.ceil(excess / subject.limit) / 1000)
    if not waits:
        return None
    return Lockout(retry_after=max(1, *waits.values()), limited_by=tuple(waits))


def _charge(subjects: list[tuple[str, Subject]]) -> list[bool]:
    """Charge one failure to each subject on its own (one full bucket must not spare the
    others); whether each had room for it."""
    cost = window_seconds() * 1000
    limiter = get_limiter()
    return [limiter.hit([subject], cost)[0][0] for _, subject in subjects]


def human_wait(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
