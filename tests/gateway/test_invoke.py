"""POST /v1/algo/... end to end on the local backend: a real runner service with warm,
sandboxed processes, every body type, every query parameter, every error status."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from django.test import Client

from catalog import services
from catalog.launch import launch_spec_for_build
from execution.runner_service import RunnerService
from gateway.models import Invocation
from tests.conftest import assert_error_shape
from tests.factories import UserFactory
from tests.gateway.conftest import TOOLBOX_MODEL, key_client, publish

pytestmark = pytest.mark.slow


def test_json_call_returns_the_envelope(toolbox, owner):
    client = key_client(owner)
    response = client.post("/v1/algo/ada/toolbox", {"text": "hi"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"] == {"echo": {"text": "hi"}}
    assert body["metadata"]["content_type"] == "json"
    assert body["metadata"]["duration"] >= 0
    assert body["request_id"] == response["X-Request-ID"]
    invocation = Invocation.objects.get(pk=body["request_id"])
    assert invocation.status == "succeeded" and invocation.version_label == "1.0.0"
    assert invocation.caller_team.slug == "ada" and invocation.input_content_type == "json"


def test_text_and_binary_bodies(toolbox, owner):
    client = key_client(owner)
    text = client.generic(
        "POST", "/v1/algo/ada/toolbox", "héllo wörld", content_type="text/plain; charset=utf-8"
    )
    assert text.json()["result"] == "HÉLLO WÖRLD"
    assert text.json()["metadata"]["content_type"] == "text"
    payload = bytes(range(256))
    binary = client.generic(
        "POST", "/v1/algo/ada/toolbox", payload, content_type="application/octet-stream"
    )
    assert binary.json()["metadata"]["content_type"] == "binary"
    assert base64.b64decode(binary.json()["result"]) == payload[::-1]


def test_raw_output(toolbox, owner):
    client = key_client(owner)
    raw = client.post("/v1/algo/ada/toolbox?output=raw", {"text": "x"}, format="json")
    assert raw["Content-Type"] == "application/json"
    assert json.loads(raw.content) == {"echo": {"text": "x"}}
    raw_text = client.generic(
        "POST", "/v1/algo/ada/toolbox?output=raw", "abc", content_type="text/plain"
    )
    assert raw_text.content == b"ABC"
    raw_bytes = client.generic(
        "POST",
        "/v1/algo/ada/toolbox?output=raw",
        b"\x01\x02",
        content_type="application/octet-stream",
    )
    assert raw_bytes.content == b"\x02\x01"


def test_raw_output_of_a_failed_call_is_a_400_with_the_error(toolbox, owner):
    """A 200 would pass the error off as the model's raw result."""
    failed = key_client(owner).post(
        "/v1/algo/ada/toolbox?output=raw", {"fail": "bad wolf"}, format="json"
    )
    assert failed.status_code == 400, failed.content
    body = failed.json()
    assert body["error"]["message"] == "bad wolf"
    assert body["error"]["error_type"] == "AlgorithmError"
    assert body["request_id"] == failed["X-Request-ID"]
    assert Invocation.objects.get(pk=body["request_id"]).status == "failed"
    theirs = key_client(UserFactory()).post(
        "/v1/algo/ada/toolbox?output=raw", {"fail": "bad wolf"}, format="json"
    )
    assert theirs.status_code == 400 and "stacktrace" not in theirs.json()["error"]


def test_model_error_is_a_200_with_the_stacktrace_for_owners_only(toolbox, owner):
    mine = key_client(owner).post("/v1/algo/ada/toolbox", {"fail": "bad wolf"}, format="json")
    assert mine.status_code == 200
    error = mine.json()["error"]
    assert error["message"] == "bad wolf" and error["error_type"] == "AlgorithmError"
    assert "Traceback" in error["stacktrace"]
    theirs = key_client(UserFactory()).post(
        "/v1/algo/ada/toolbox", {"fail": "bad wolf"}, format="json"
    )
    assert theirs.status_code == 200
    assert "stacktrace" not in theirs.json()["error"]
    assert Invocation.objects.filter(status="failed").count() == 2


def test_stdout_is_for_owners_and_ignored_for_anyone_else(toolbox, owner):
    mine = key_client(owner).post(
        "/v1/algo/ada/toolbox?stdout=true", {"print": "debug line"}, format="json"
    )
    assert mine.json()["metadata"]["stdout"] == "debug line\n"
    # Algorithmia: "only respected when the caller is the algorithm author": the call runs,
    # and what the model printed stays with its owner.
    theirs = key_client(UserFactory()).post(
        "/v1/algo/ada/toolbox?stdout=true", {"print": "secret output"}, format="json"
    )
    assert theirs.status_code == 200, theirs.content
    assert theirs.json()["result"] == {"echo": {"print": "secret output"}}
    assert "stdout" not in theirs.json()["metadata"]
    assert b"secret output\n" not in theirs.content
    assert Invocation.objects.get(pk=theirs.json()["request_id"]).want_stdout is False
    quiet = key_client(owner).post(
        "/v1/algo/ada/toolbox?stdout=False", {"print": "x"}, format="json"
    )
    assert "stdout" not in quiet.json()["metadata"]


def test_versions_through_the_gateway(toolbox, owner):
    publish(owner, {**TOOLBOX_MODEL, "README.md": "v1.1"}, bump="minor")
    publish(owner, {**TOOLBOX_MODEL, "README.md": "v2 private"}, bump="major", visibility="private")
    stranger = key_client(UserFactory())
    mine = key_client(owner)

    def version_of(client, path):
        response = client.post(path, {"text": "v"}, format="json")
        assert response.status_code == 200, response.content
        return Invocation.objects.get(pk=response.json()["request_id"]).version_label

    assert version_of(stranger, "/v1/algo/ada/toolbox") == "1.1.0"
    assert version_of(mine, "/v1/algo/ada/toolbox") == "2.0.0"
    assert version_of(stranger, "/v1/algo/ada/toolbox/1.0.0") == "1.0.0"
    assert version_of(stranger, "/v1/algo/ada/toolbox/1") == "1.1.0"
    assert version_of(stranger, "/v1/algo/ada/toolbox/1.*") == "1.1.0"
    assert version_of(mine, "/v1/algo/ada/toolbox/latestPrivate") == "2.0.0"
    assert_error_shape(stranger.post("/v1/algo/ada/toolbox/2.0.0", {}, format="json"), 404)
    assert_error_shape(stranger.post("/v1/algo/ada/toolbox/latestPrivate", {}, format="json"), 404)
    assert_error_shape(stranger.post("/v1/algo/ada/toolbox/9", {}, format="json"), 404)
    assert_error_shape(stranger.post("/v1/algo/ada/toolbox/v1", {}, format="json"), 400)
    assert_error_shape(
        stranger.post("/v1/algo/ada/nothing", {}, format="json"), 404, "NotFoundError"
    )


def test_private_models_only_for_members_and_their_keys(owner, storage, runner):
    publish(owner, {**TOOLBOX_MODEL}, visibility="private")
    assert key_client(owner).post("/v1/algo/ada/toolbox", {}, format="json").status_code == 200
    assert_error_shape(
        key_client(UserFactory()).post("/v1/algo/ada/toolbox", {}, format="json"), 404
    )


def test_key_scopes_decide_with_canonical_names(toolbox, owner):
    def status(scopes, path="/v1/algo/ada/toolbox"):
        return key_client(owner, scopes=scopes).post(path, {}, format="json").status_code

    assert status(["algo://ada/*"]) == 200
    assert status(["algo://ada/toolbox/1.*"]) == 200
    assert status(["algo://ada/toolbox/2.*"]) == 403
    assert status(["algo://other/*"]) == 403
    assert status([]) == 403
    assert status(["algo://ada/toolbox/1.*"], "/v1/algo/ada/toolbox/latest") == 200
    assert status(["algo://ada/toolbox/1.0.0"], "/v1/algo/ada/toolbox/1") == 200


def test_call_errors_have_the_documented_statuses(toolbox, owner, settings, client):
    mine = key_client(owner)
    assert_error_shape(
        client.post("/v1/algo/ada/toolbox", {}, content_type="application/json"),
        401,
        "AuthenticationError",
    )
    assert_error_shape(
        mine.generic("POST", "/v1/algo/ada/toolbox", "{nope", content_type="application/json"),
        400,
        "InputError",
    )
    error = assert_error_shape(
        mine.post("/v1/algo/ada/toolbox", {"text": 5}, format="json"), 400, "InputError"
    )
    assert "input schema" in error["message"] and "$.text" in error["message"]
    # The field's path and the rule it broke, as text and as data for a form to show it at
    # the field; never the input's Python repr.
    assert error["message"].endswith("at $.text: must be string, not a number (type)")
    assert (error["path"], error["rule"]) == (["text"], "type")
    assert error["fields"] == {"$.text": ["must be string, not a number (type)"]}
    assert_error_shape(
        mine.generic("POST", "/v1/algo/ada/toolbox", "<x/>", content_type="application/xml"), 400
    )
    assert_error_shape(mine.post("/v1/algo/ada/toolbox?timeout=0", {}, format="json"), 400)
    assert_error_shape(mine.post("/v1/algo/ada/toolbox?timeout=3001", {}, format="json"), 400)
    assert_error_shape(mine.post("/v1/algo/ada/toolbox?output=fancy", {}, format="json"), 400)
    settings.GATEWAY_MAX_BODY_BYTES = 100
    big = mine.generic("POST", "/v1/algo/ada/toolbox", "x" * 101, content_type="text/plain")
    assert_error_shape(big, 413, "RequestTooLargeError")
    assert big["X-Request-ID"]


def test_timeout_is_a_504_and_the_next_call_works(toolbox, owner):
    mine = key_client(owner)
    slow = mine.post("/v1/algo/ada/toolbox?timeout=1", {"sleep": 30}, format="json")
    error = assert_error_shape(slow, 504, "TimeoutError")
    assert "1 seconds" in error["message"]
    assert Invocation.objects.get(pk=slow.json()["request_id"]).status == "timeout"
    again = mine.post("/v1/algo/ada/toolbox", {"text": "alive"}, format="json")
    assert again.json()["result"] == {"echo": {"text": "alive"}}


def test_warm_processes_are_reused(toolbox, owner, runner):
    mine = key_client(owner)
    for _ in range(5):
        mine.post("/v1/algo/ada/toolbox", {"text": "x"}, format="json")
    invocations = list(Invocation.objects.order_by("created_at"))
    assert [i.cold_start for i in invocations] == [True, False, False, False, False]
    assert runner.stats()["processes"] == 1


def test_invocation_resource_for_caller_and_owner_only(toolbox, owner):
    caller = UserFactory(username="caller")
    response = key_client(caller).post("/v1/algo/ada/toolbox", {"fail": "oops"}, format="json")
    request_id = response.json()["request_id"]
    seen = key_client(caller).get(f"/v1/invocations/{request_id}").json()
    assert seen["status"] == "failed" and seen["model"] == "ada/toolbox"
    assert seen["caller"] == "caller" and "stacktrace" not in seen["error"]
    by_owner = key_client(owner).get(f"/v1/invocations/{request_id}").json()
    assert "stacktrace" in by_owner["error"]
    assert_error_shape(key_client(UserFactory()).get(f"/v1/invocations/{request_id}"), 404)


def test_rate_limits_answer_429_with_headers(toolbox, owner, settings):
    settings.RATE_LIMIT_PER_KEY_PER_MINUTE = 2
    mine = key_client(owner)
    first = mine.post("/v1/algo/ada/toolbox", {}, format="json")
    assert first.status_code == 200 and first["RateLimit-Policy"] == "2;w=60"
    assert "remaining=1" in first["RateLimit"]
    mine.post("/v1/algo/ada/toolbox", {}, format="json")
    refused = mine.post("/v1/algo/ada/toolbox", {}, format="json")
    error = assert_error_shape(refused, 429, "RateLimitError")
    assert "rate limit of the key" in error["message"]
    assert int(refused["Retry-After"]) >= 1 and "remaining=0" in refused["RateLimit"]
    assert key_client(owner).post("/v1/algo/ada/toolbox", {}, format="json").status_code == 200


def test_a_synchronous_call_canceled_while_it_runs_answers_canceled(toolbox, owner, runner):
    """Its process is killed; its caller hears the cancel that was recorded, not the kill."""
    answers = []
    slow = threading.Thread(
        target=lambda: answers.append(
            key_client(owner).post("/v1/algo/ada/toolbox", {"sleep": 60}, format="json")
        )
    )
    slow.start()
    deadline = time.monotonic() + 60
    while runner.stats()["busy"] == 0:
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.1)
    request_id = Invocation.objects.get(status="running").pk
    canceled = key_client(owner).post(f"/v1/invocations/{request_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    slow.join(timeout=30)
    assert not slow.is_alive(), "the call was not stopped"
    [answer] = answers
    assert answer.status_code == 200
    assert answer.json()["error"] == {
        "message": "canceled by the caller",
        "error_type": "CanceledError",
    }
    assert Invocation.objects.get(pk=request_id).status == "canceled"


def test_team_concurrency_limit(toolbox, owner, settings):
    settings.TEAM_CONCURRENCY_LIMIT = 1
    mine = key_client(owner)
    slow = threading.Thread(
        target=lambda: mine.post("/v1/algo/ada/toolbox", {"sleep": 2}, format="json")
    )
    slow.start()
    time.sleep(0.7)
    refused = key_client(owner).post("/v1/algo/ada/toolbox", {}, format="json")
    slow.join()
    error = assert_error_shape(refused, 429, "RateLimitError")
    assert "already has 1 calls running" in error["message"]
    assert refused["Retry-After"] == "1"


def test_owners_keep_processes_warm_so_callers_meet_no_cold_start(toolbox, owner, runner):
    mine = key_client(owner)
    assert_error_shape(
        key_client(UserFactory()).patch(
            "/v1/models/ada/toolbox", {"warm_processes": 1}, format="json"
        ),
        403,
    )
    assert_error_shape(
        mine.patch("/v1/models/ada/toolbox", {"warm_processes": 9}, format="json"), 400
    )
    response = mine.patch("/v1/models/ada/toolbox", {"warm_processes": 2}, format="json")
    assert response.status_code == 200 and response.json()["warm_processes"] == 2
    service = RunnerService(
        runner,
        launch_spec_for_build=launch_spec_for_build,
        reservations_wanted=services.reservations_wanted,
    )
    service.apply_reservations()  # what the runner's maintenance loop does
    assert runner.stats()["processes"] == 2
    call = key_client(UserFactory()).post("/v1/algo/ada/toolbox", {}, format="json")
    assert Invocation.objects.get(pk=call.json()["request_id"]).cold_start is False
    mine.patch("/v1/models/ada/toolbox", {"warm_processes": 0}, format="json")
    service.apply_reservations()
    assert runner.reserved() == {}


def test_nul_characters_are_answered_not_crashed_on(toolbox, owner):
    mine = key_client(owner)
    text = mine.generic("POST", "/v1/algo/ada/toolbox", "a\x00b", content_type="text/plain")
    assert text.status_code == 200 and text.json()["result"] == "A\x00B"
    as_json = mine.post("/v1/algo/ada/toolbox", {"text": "a\x00b"}, format="json")
    assert as_json.status_code == 200
    assert as_json.json()["result"] == {"echo": {"text": "a\x00b"}}
    stored = Invocation.objects.get(pk=as_json.json()["request_id"])
    assert stored.status == "succeeded" and stored.result == {"echo": {"text": "a\\u0000b"}}
    refused = mine.post("/v1/algo/ada/toolbox?output=void", {"text": "a\x00b"}, format="json")
    assert_error_shape(refused, 400, "InputError")


def test_the_try_it_console_calls_with_the_session_and_its_csrf_token(toolbox, owner):
    """The model page's console posts with the browser session: the gateway accepts it
    with the page's CSRF token and refuses it without (no cross-site calls)."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    page = browser.get("/ada/toolbox")
    assert b'id="try-form"' in page.content
    token = page.cookies["csrftoken"].value
    answered = browser.post(
        "/v1/algo/ada/toolbox/1.0.0",
        '{"text": "from the page"}',
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert answered.status_code == 200
    assert answered.json()["result"] == {"echo": {"text": "from the page"}}
    forged = browser.post(
        "/v1/algo/ada/toolbox/1.0.0", '{"text": "x"}', content_type="application/json"
    )
    assert_error_shape(forged, 403, "AuthorizationError")
    assert b"Sign up to try" in Client().get("/ada/toolbox").content
