"""Where a request comes from: REMOTE_ADDR, and X-Forwarded-For only through as many proxies
as the deployment says it has."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from marketplace.audit.context import actor_for
from marketplace.core.addresses import client_ip


def _request(remote="10.0.0.5", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_forwarded_for_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(_request(forwarded="198.51.100.9")) == "10.0.0.5"


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (1, "198.51.100.9", "198.51.100.9"),
        # The client may send its own header first: only what our proxies added counts.
        (1, "1.2.3.4, 198.51.100.9", "198.51.100.9"),
        (2, "1.2.3.4, 198.51.100.9, 10.1.1.1", "198.51.100.9"),
        (2, "198.51.100.9", "198.51.100.9"),
        (1, "", "10.0.0.5"),
        (1, "not-an-address", "10.0.0.5"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_trusted_proxies_name_the_client(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(_request(forwarded=forwarded)) == expected


def test_a_malformed_remote_address_is_not_stored():
    assert client_ip(_request(remote="unknown")) is None


def test_an_anonymous_request_is_anonymous():
    request = _request()
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    actor = actor_for(request)
    assert (actor.user, actor.via, actor.ip) == (None, "anonymous", "10.0.0.5")
