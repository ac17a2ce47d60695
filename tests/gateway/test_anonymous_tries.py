"""A public model's owners may let visitors try it without an account: off by default, a
few calls a day per client address and model, billed to no one (an invocation of the
`anonymous` namespace and no usage record), with the model's own schema and limits.
Everything through the real API, the real runner and the real limiter."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from billing.models import UsageRecord
from gateway.models import Invocation
from tests.conftest import assert_error_shape
from tests.factories import UserFactory
from tests.gateway.conftest import TOOLBOX_MODEL, key_client, publish

pytestmark = pytest.mark.slow


def visitor(address: str = "203.0.113.7") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    return client


def allow(owner, name: str = "toolbox", allowed: bool = True):
    response = key_client(owner).patch(
        f"/v1/models/ada/{name}", {"anonymous_tries": allowed}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["anonymous_tries"] is allowed


def test_off_by_default_a_call_without_a_key_is_a_401(toolbox):
    response = visitor().post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json")
    assert_error_shape(response, 401, "AuthenticationError")
    assert response["WWW-Authenticate"]
    assert not Invocation.objects.exists()


def test_an_anonymous_try_is_an_invocation_of_anonymous_billed_to_no_one(toolbox, owner):
    allow(owner)
    response = visitor().post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["result"] == {"echo": {"text": "hi"}}
    call = Invocation.objects.get(pk=response.json()["request_id"])
    assert call.caller_team.slug == "anonymous"
    assert call.caller_user is None and call.api_key is None
    assert call.status == "succeeded"
    assert not UsageRecord.objects.filter(request_id=call.pk).exists()
    assert not call.caller_team.members.exists()
    # A signed-in call of the same model is billed as ever.
    billed = key_client(UserFactory()).post("/v1/algo/ada/toolbox", {"text": "x"}, format="json")
    assert UsageRecord.objects.filter(request_id=billed.json()["request_id"]).exists()


def test_tries_are_limited_per_address_and_model_per_day(toolbox, owner, settings):
    settings.ANONYMOUS_TRIES_PER_DAY = 2
    publish(
        owner,
        {
            **TOOLBOX_MODEL,
            "model.toml": TOOLBOX_MODEL["model.toml"].replace(
                'name = "toolbox"', 'name = "toolbox-two"'
            ),
        },
    )
    allow(owner)
    allow(owner, "toolbox-two")
    for _ in range(2):
        ok = visitor().post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json")
        assert ok.status_code == 200, ok.content
    refused = visitor().post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json")
    error = assert_error_shape(refused, 429, "RateLimitError")
    assert "2 tries a day without an account of ada/toolbox" in error["message"]
    assert "the next one is free in" in error["message"] and "UTC" in error["message"]
    assert "Sign up" in error["message"]
    # GCRA over a day: one try frees every 12 hours.
    assert 11 * 3600 < int(refused["Retry-After"]) <= 12 * 3600
    assert Invocation.objects.count() == 2
    # Another address, or another model, has its own tries.
    other_address = visitor("198.51.100.9").post("/v1/algo/ada/toolbox", {}, format="json")
    assert other_address.status_code == 200
    other_model = visitor().post("/v1/algo/ada/toolbox-two", {}, format="json")
    assert other_model.status_code == 200
    # X-Forwarded-For is not believed without trusted proxies: no way round the limit.
    forged = visitor().post(
        "/v1/algo/ada/toolbox", {}, format="json", HTTP_X_FORWARDED_FOR="192.0.2.44"
    )
    assert_error_shape(forged, 429, "RateLimitError")


def test_the_models_own_schema_applies_and_only_synchronous_tries(toolbox, owner):
    allow(owner)
    bad = visitor().post("/v1/algo/ada/toolbox", {"text": 5}, format="json")
    error = assert_error_shape(bad, 400, "InputError")
    assert (error["path"], error["rule"]) == (["text"], "type")
    void = visitor().post("/v1/algo/ada/toolbox?output=void", {}, format="json")
    assert_error_shape(void, 401, "AuthenticationError")
    hook = visitor().post(
        "/v1/algo/ada/toolbox?webhook=https://example.com/hook", {}, format="json"
    )
    assert_error_shape(hook, 401, "AuthenticationError")


def test_private_and_unknown_models_take_no_tries(owner, storage, runner):
    publish(owner, TOOLBOX_MODEL, visibility="private")
    allow(owner)
    # The 401 of any call without a key, whether the model exists or not; the body is not
    # even read.
    for path in ("/v1/algo/ada/toolbox", "/v1/algo/ada/nothing"):
        refused = visitor().generic("POST", path, "{nope", content_type="application/json")
        assert_error_shape(refused, 401, "AuthenticationError")
    assert not Invocation.objects.exists()


def test_only_the_owners_admins_change_the_setting(toolbox, owner):
    stranger = key_client(UserFactory())
    response = stranger.patch("/v1/models/ada/toolbox", {"anonymous_tries": True}, format="json")
    assert response.status_code in (403, 404)
    toolbox.model.refresh_from_db()
    assert toolbox.model.anonymous_tries is False
    # The page's form, for the owner.
    page = Client()
    page.force_login(owner)
    answer = page.post("/ada/toolbox/settings/anonymous-tries", {"allowed": "on"})
    assert answer.status_code == 302 and answer["Location"] == "/ada/toolbox#try-it"
    toolbox.model.refresh_from_db()
    assert toolbox.model.anonymous_tries is True
    other = Client()
    other.force_login(UserFactory())
    other.post("/ada/toolbox/settings/anonymous-tries", {"allowed": "off"})
    toolbox.model.refresh_from_db()
    assert toolbox.model.anonymous_tries is True


@pytest.mark.django_db
def test_the_anonymous_namespace_cannot_be_taken():
    response = Client().post(
        "/accounts/signup/",
        {
            "username": "anonymous",
            "email": "a@example.com",
            "password1": "a-very-good-password",
            "password2": "a-very-good-password",
        },
    )
    assert response.status_code == 200
    assert "reserved" in " ".join(response.context["form"].errors.get("username", []))
