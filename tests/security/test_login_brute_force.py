"""Password guessing through the log-in form, and bad API keys on /v1: failed attempts are
throttled per username and per client address in the shared limiter (PostgreSQL here), a
locked-out attempt is answered 429 with Retry-After without checking the password, every
refusal is audited, nothing tells whether an account exists, and the lockout ends by itself.

Each test uses addresses and usernames of its own: the limiter commits its state outside the
test's transaction (see marketplace/core/limits.py), so it must not leak into other tests.
"""

from __future__ import annotations

import itertools
import re
import time
import uuid

import pytest
from django.test import Client

from marketplace.audit.models import AuditEvent
from tests.conftest import assert_error_shape
from tests.factories import DEFAULT_PASSWORD, UserFactory

LOGIN = "/accounts/login/"
_addresses = itertools.count(1)


def fresh_ip() -> str:
    """An address of the documentation ranges no other test uses."""
    n = next(_addresses) + (uuid.uuid4().int % 200) * 250
    return f"198.51.{n // 250 % 250}.{n % 250 + 1}"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.LOGIN_RATE_LIMIT_PER_USERNAME = 3
    settings.LOGIN_RATE_LIMIT_PER_IP = 5
    settings.LOGIN_RATE_LIMIT_WINDOW_SECONDS = 60
    settings.API_KEY_FAILURES_PER_IP = 4
    settings.TRUSTED_PROXY_COUNT = 0
    return settings


def unique_user():
    return UserFactory(username=f"victim-{uuid.uuid4().hex[:8]}")


def attempt(username: str, password: str, *, ip: str, client: Client | None = None, **extra):
    client = client or Client()
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def logged_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def assert_throttled(response) -> int:
    assert response.status_code == 429, response.status_code
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    page = response.content.decode()
    assert "Too many log-in attempts" in page and "try again in" in page
    return retry_after


def test_brute_force_from_one_address_is_locked_out_even_with_the_right_password(db):
    user, ip = unique_user(), fresh_ip()
    for n in range(3):
        response = attempt(user.username, f"guess-{n}", ip=ip)
        assert response.status_code == 200 and "_auth_user_id" not in response.client.session
    # Over the username's limit: refused before the password is even looked at.
    locked = attempt(user.username, DEFAULT_PASSWORD, ip=ip)
    retry_after = assert_throttled(locked)
    assert retry_after <= 60
    assert "_auth_user_id" not in locked.client.session
    # Every failure and every refusal is in the trail; the right password left no success.
    failed = AuditEvent.objects.filter(action="login.failed", target_repr=user.username)
    throttled = AuditEvent.objects.filter(action="login.throttled", target_repr=user.username)
    assert failed.count() == 3 and throttled.count() == 1
    event = throttled.get()
    assert event.ip == ip and event.team.slug == user.username
    assert event.after["limited_by"] == ["username"] and event.after["retry_after"] == retry_after
    assert not AuditEvent.objects.filter(action="login.succeeded", actor=user).exists()
    # Another user from elsewhere is not affected.
    other = unique_user()
    assert logged_in(attempt(other.username, DEFAULT_PASSWORD, ip=fresh_ip()))


def test_one_address_guessing_many_usernames_is_locked_out_by_address(db):
    ip = fresh_ip()
    for _ in range(5):
        assert attempt(f"nobody-{uuid.uuid4().hex[:6]}", "x", ip=ip).status_code == 200
    user = unique_user()
    locked = attempt(user.username, DEFAULT_PASSWORD, ip=ip)
    assert_throttled(locked)
    event = AuditEvent.objects.get(action="login.throttled", target_repr=user.username)
    assert event.after["limited_by"] == ["ip"]
    # The same user from another address logs in.
    assert logged_in(attempt(user.username, DEFAULT_PASSWORD, ip=fresh_ip()))


def test_many_addresses_at_one_username_are_locked_out_by_username(db, limits):
    """Behind a trusted proxy the client's address comes from X-Forwarded-For; spreading the
    guesses over addresses does not get around the username's limit."""
    limits.TRUSTED_PROXY_COUNT = 1
    user, proxy = unique_user(), fresh_ip()
    for _ in range(3):
        response = attempt(
            user.username, "wrong", ip=proxy, HTTP_X_FORWARDED_FOR=f"10.9.9.9, {fresh_ip()}"
        )
        assert response.status_code == 200
    attacker = fresh_ip()
    locked = attempt(user.username, DEFAULT_PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR=attacker)
    assert_throttled(locked)
    event = AuditEvent.objects.get(action="login.throttled", target_repr=user.username)
    assert event.ip == attacker  # the address the proxy saw, not the proxy's
    # The proxy's own address was not what was counted: another user through it is fine.
    other = unique_user()
    assert logged_in(
        attempt(other.username, DEFAULT_PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR=fresh_ip())
    )


def test_a_spoofed_forwarded_for_does_not_help_without_a_trusted_proxy(db):
    ip = fresh_ip()
    for n in range(5):
        attempt(f"ghost-{n}-{uuid.uuid4().hex[:6]}", "x", ip=ip, HTTP_X_FORWARDED_FOR=fresh_ip())
    assert_throttled(attempt("anyone", "x", ip=ip, HTTP_X_FORWARDED_FOR=fresh_ip()))


def test_the_answer_does_not_tell_whether_the_account_exists(db):
    user, ip_a, ip_b = unique_user(), fresh_ip(), fresh_ip()
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    answers = {}
    for name, ip in ((user.username, ip_a), (ghost, ip_b)):
        statuses = [attempt(name, "wrong", ip=ip).status_code for _ in range(4)]
        last = attempt(name, "wrong", ip=ip)
        page = re.sub(r"\d+", "N", last.content.decode())  # the wait may differ by a second
        answers[name] = (statuses, last.status_code, sorted(last.headers), page)
    known, unknown = answers[user.username], answers[ghost]
    assert known[0] == unknown[0] == [200, 200, 200, 429]
    assert known[1:] == unknown[1:]
    refused = AuditEvent.objects.filter(action="login.throttled", target_repr=ghost)
    assert refused.count() == 2
    assert all(e.team is None and e.after["known_user"] is False for e in refused)


def test_usernames_are_counted_case_insensitively(db):
    user, ip = unique_user(), fresh_ip()
    for spelling in (user.username, user.username.upper(), f"  {user.username.title()} "):
        attempt(spelling, "wrong", ip=fresh_ip())
    assert_throttled(attempt(user.username, DEFAULT_PASSWORD, ip=ip))


def test_successful_logins_are_not_counted(db):
    user, ip = unique_user(), fresh_ip()
    for _ in range(6):
        assert logged_in(attempt(user.username, DEFAULT_PASSWORD, ip=ip))


@pytest.mark.slow
def test_the_lockout_ends_after_the_window(db, limits):
    # Long enough that the four attempts fit in one attempt's refill (10 s) on a busy
    # machine: with 6 s, a test process stalled for 5 s saw an attempt freed already.
    limits.LOGIN_RATE_LIMIT_WINDOW_SECONDS = 30
    user, ip = unique_user(), fresh_ip()
    for _ in range(3):
        attempt(user.username, "wrong", ip=ip)
    retry_after = assert_throttled(attempt(user.username, DEFAULT_PASSWORD, ip=ip))
    assert retry_after <= 10  # 30 s / 3 failures: one more attempt frees every 10 s
    time.sleep(retry_after + 0.2)
    assert logged_in(attempt(user.username, DEFAULT_PASSWORD, ip=ip))


def test_throttling_can_be_turned_off(db, limits):
    limits.LOGIN_RATE_LIMIT_PER_USERNAME = 0
    limits.LOGIN_RATE_LIMIT_PER_IP = 0
    user, ip = unique_user(), fresh_ip()
    for _ in range(8):
        attempt(user.username, "wrong", ip=ip)
    assert logged_in(attempt(user.username, DEFAULT_PASSWORD, ip=ip))


# -- API keys ---------------------------------------------------------------------------------


def test_repeated_bad_api_keys_are_rate_limited_per_address(db, user_key):
    ip = fresh_ip()
    client = Client()
    for _ in range(4):
        response = client.get("/v1/keys", HTTP_AUTHORIZATION="Simple sim_not-a-key", REMOTE_ADDR=ip)
        assert_error_shape(response, 401, "AuthenticationError")
    refused = client.get("/v1/keys", HTTP_AUTHORIZATION="Simple sim_not-a-key", REMOTE_ADDR=ip)
    error = assert_error_shape(refused, 429, "RateLimitError")
    assert "invalid API key" in error["message"] and int(refused["Retry-After"]) >= 1
    # A valid key is never held back, from the same address or any other.
    secret = user_key[1]
    for address in (ip, fresh_ip()):
        ok = client.get("/v1/keys", HTTP_AUTHORIZATION=f"Simple {secret}", REMOTE_ADDR=address)
        assert ok.status_code == 200, ok.content
    # Another address with a bad key still gets the plain 401.
    elsewhere = client.get("/v1/keys", HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR=fresh_ip())
    assert_error_shape(elsewhere, 401, "AuthenticationError")
