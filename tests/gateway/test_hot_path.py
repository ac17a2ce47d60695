"""The hot path (gateway/hot_path.py) answers a synchronous call exactly as the DRF view
does (status, body, headers), records it the same way, and hands Django everything it does
not take. Each call is sent through the real WSGI application (marketplace/wsgi.py) with
the hot path on, and the same call through Django with it off."""

from __future__ import annotations

import base64
import io
import json
import sys

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test.client import RequestFactory

from billing.models import UsageRecord
from gateway.models import Invocation
from marketplace import wsgi
from marketplace.accounts.services import KEY_LOOKUP_LENGTH
from marketplace.core import metrics
from tests.factories import UserFactory, make_key
from tests.gateway.conftest import TOOLBOX_MODEL, publish

pytestmark = pytest.mark.slow

# Headers whose values differ from call to call (the length: the model's duration is in it).
VARYING = {"X-Request-ID", "RateLimit", "Content-Length"}


class Answer:
    def __init__(self, status: str, headers: list, body: bytes):
        self.status = int(status.split()[0])
        self.headers = dict(headers)
        self.body = body

    def json(self):
        return json.loads(self.body)


def send(path: str, *, key: str | None, body=b"", content_type="application/json", **extra):
    """POST through marketplace.wsgi.application, as gunicorn would; returns the answer and
    whether the hot path took it."""
    if isinstance(body, str):
        body = body.encode()
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    environ = RequestFactory().generic("POST", path, body, content_type=content_type).environ
    environ["wsgi.input"] = io.BytesIO(body)
    if key is not None:
        environ["HTTP_AUTHORIZATION"] = f"Simple {key}"
    environ.update(extra)
    got = {}

    def start_response(status, headers, exc_info=None):
        got.update(status=status, headers=headers)

    took = []
    respond = wsgi.application.respond

    def watched(environ):
        response = respond(environ)
        took.append(response is not None)
        return response

    # As Django's test client does: the test's connection is not closed between requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    wsgi.application.respond = watched
    try:
        result = wsgi.application(environ, start_response)
        content = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        del wsgi.application.respond
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return Answer(got["status"], got["headers"], content), took == [True]


def both(settings, path, **kwargs):
    """The same call through Django (hot path off) and through the hot path."""
    settings.GATEWAY_HOT_PATH = False
    django, took = send(path, **kwargs)
    assert not took
    settings.GATEWAY_HOT_PATH = True
    hot, took = send(path, **kwargs)
    return django, hot, took


def same(django: Answer, hot: Answer) -> None:
    assert hot.status == django.status, (hot.body, django.body)
    assert set(hot.headers) == set(django.headers), (hot.headers, django.headers)
    for name, value in django.headers.items():
        if name not in VARYING:
            assert hot.headers[name] == value, name
    if django.headers.get("Content-Type") == "application/json":
        mine, theirs = hot.json(), django.json()
        if isinstance(theirs, dict) and "request_id" in theirs:
            assert mine.pop("request_id") == hot.headers["X-Request-ID"]
            theirs.pop("request_id")
        if isinstance(theirs, dict) and "duration" in theirs.get("metadata", {}):
            assert isinstance(mine["metadata"].pop("duration"), float)
            theirs["metadata"].pop("duration")
            # Whichever of the two calls came first started the model's process.
            mine["metadata"].pop("cold_start", None)
            theirs["metadata"].pop("cold_start", None)
        assert mine == theirs
    else:
        assert hot.body == django.body


@pytest.fixture
def owner_key(owner):
    return make_key(owner)[1]


CALLS = [
    ("json", "/v1/algo/ada/toolbox", {"body": {"text": "hi"}}),
    ("version", "/v1/algo/ada/toolbox/1.0.0", {"body": {"text": "hi"}}),
    ("text", "/v1/algo/ada/toolbox", {"body": "héllo", "content_type": "text/plain"}),
    (
        "binary",
        "/v1/algo/ada/toolbox",
        {"body": b"\x00\x01\xff", "content_type": "application/octet-stream"},
    ),
    ("raw json", "/v1/algo/ada/toolbox?output=raw", {"body": {"text": "x"}}),
    ("raw text", "/v1/algo/ada/toolbox?output=raw", {"body": "abc", "content_type": "text/plain"}),
    (
        "raw binary",
        "/v1/algo/ada/toolbox?output=raw",
        {"body": b"\x01\x02", "content_type": "application/octet-stream"},
    ),
    ("model error", "/v1/algo/ada/toolbox", {"body": {"fail": "bad wolf"}}),
    ("raw model error", "/v1/algo/ada/toolbox?output=raw", {"body": {"fail": "bad wolf"}}),
    ("stdout", "/v1/algo/ada/toolbox?stdout=true", {"body": {"print": "hello"}}),
    ("timeout", "/v1/algo/ada/toolbox?timeout=0.5", {"body": {"sleep": 5}}),
    ("schema", "/v1/algo/ada/toolbox", {"body": 42}),
    ("bad json", "/v1/algo/ada/toolbox", {"body": b"{nope"}),
    ("bad timeout", "/v1/algo/ada/toolbox?timeout=abc", {"body": {}}),
    ("bad flag", "/v1/algo/ada/toolbox?stdout=maybe", {"body": {}}),
    ("media type", "/v1/algo/ada/toolbox", {"body": b"<a/>", "content_type": "application/xml"}),
    ("no model", "/v1/algo/ada/nothing", {"body": {}}),
    ("no version", "/v1/algo/ada/toolbox/9.9.9", {"body": {}}),
    ("bad project", "/v1/algo/ada/toolbox", {"body": {}, "HTTP_X_PROJECT": "a\x01b"}),
    ("void", "/v1/algo/ada/toolbox?output=void", {"body": {"text": "hi"}}),
    ("private webhook", "/v1/algo/ada/toolbox?webhook=http://127.0.0.1/x", {"body": {}}),
]


@pytest.mark.parametrize(("what", "path", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
def test_the_hot_path_answers_as_the_view_does(toolbox, owner_key, settings, what, path, kwargs):
    django, hot, took = both(settings, path, key=owner_key, **kwargs)
    assert took, "the hot path did not take the call"
    same(django, hot)


def test_each_call_has_one_final_invocation_and_one_usage_record(toolbox, owner_key, settings):
    settings.BILLING_METERING = True
    answer, took = send("/v1/algo/ada/toolbox", key=owner_key, body={"text": "hi"})
    assert took and answer.status == 200
    request_id = answer.json()["request_id"]
    invocation = Invocation.objects.get(pk=request_id)
    assert invocation.status == "succeeded" and invocation.finished_at is not None
    assert UsageRecord.objects.filter(request_id=request_id).count() == 1
    failed, _ = send("/v1/algo/ada/toolbox", key=owner_key, body={"fail": "x"})
    assert Invocation.objects.get(pk=failed.json()["request_id"]).status == "failed"
    assert UsageRecord.objects.filter(request_id=failed.json()["request_id"]).count() == 1


def test_an_asynchronous_call_is_queued_once(toolbox, owner_key, settings):
    settings.BILLING_METERING = True
    answer, took = send("/v1/algo/ada/toolbox?output=void", key=owner_key, body={"text": "hi"})
    assert took and answer.status == 202
    request_id = answer.json()["request_id"]
    assert answer.json() == {"async": "void", "request_id": request_id}
    invocation = Invocation.objects.get(pk=request_id)
    assert invocation.is_async and invocation.input_data == {"text": "hi"}


def test_private_models_stay_private(toolbox, owner, settings):
    secret = {
        **TOOLBOX_MODEL,
        "model.toml": TOOLBOX_MODEL["model.toml"].replace("toolbox", "secret"),
    }
    publish(owner, secret, visibility="private")
    outsider = make_key(UserFactory())[1]
    django, hot, took = both(settings, "/v1/algo/ada/secret", key=outsider, body={})
    assert took and hot.status == 404
    same(django, hot)


def test_rate_limits_and_the_concurrency_limit_answer_as_the_view_does(toolbox, owner, settings):
    settings.RATE_LIMIT_PER_KEY_PER_MINUTE = 1
    settings.GATEWAY_HOT_PATH = False
    django_key = make_key(owner)[1]
    send("/v1/algo/ada/toolbox", key=django_key, body={})
    django, _ = send("/v1/algo/ada/toolbox", key=django_key, body={})
    settings.GATEWAY_HOT_PATH = True
    hot_key = make_key(owner)[1]
    send("/v1/algo/ada/toolbox", key=hot_key, body={})
    hot, took = send("/v1/algo/ada/toolbox", key=hot_key, body={})
    assert took and hot.status == django.status == 429
    assert set(hot.headers) == set(django.headers)
    assert hot.json()["error"]["error_type"] == django.json()["error"]["error_type"]
    assert hot.json()["request_id"] == hot.headers["X-Request-ID"]
    assert int(hot.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("what", "path", "kwargs"),
    [
        ("no key", "/v1/algo/ada/toolbox", {"key": None}),
        ("bad key", "/v1/algo/ada/toolbox", {"key": "mk_" + "x" * 40}),
        ("cookie", "/v1/algo/ada/toolbox", {"HTTP_COOKIE": "sessionid=x"}),
        ("origin", "/v1/algo/ada/toolbox", {"HTTP_ORIGIN": "https://example.com"}),
        ("accept", "/v1/algo/ada/toolbox", {"HTTP_ACCEPT": "text/html"}),
        ("host", "/v1/algo/ada/toolbox", {"HTTP_HOST": "evil.example"}),
        ("other route", "/v1/algo/ada/toolbox/1.0.0/extra", {}),
        ("too large", "/v1/algo/ada/toolbox", {"CONTENT_LENGTH": str(10**9)}),
        ("chunked", "/v1/algo/ada/toolbox", {"HTTP_TRANSFER_ENCODING": "chunked"}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_what_the_hot_path_does_not_take_goes_to_django(toolbox, owner_key, what, path, kwargs):
    kwargs = {"key": owner_key, "body": {"text": "hi"}, **kwargs}
    if what == "too large":
        kwargs["body"] = {}
    answer, took = send(path, **kwargs)
    assert not took
    if what == "bad key":
        assert (
            answer.status == 401 and answer.json()["error"]["error_type"] == "AuthenticationError"
        )
    if what == "cookie":
        assert answer.status == 200 and answer.json()["result"] == {"echo": {"text": "hi"}}


def test_an_error_inside_the_hot_path_is_the_documented_500(toolbox, owner_key, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(sys.modules["gateway.services"], "invoke", broken)
    answer, took = send("/v1/algo/ada/toolbox", key=owner_key, body={})
    assert took and answer.status == 500
    body = answer.json()
    assert body["error"]["error_type"] == "ServerError" and "boom" not in answer.body.decode()
    assert body["request_id"] == answer.headers["X-Request-ID"]


def test_base64_binary_results_match(toolbox, owner_key):
    answer, took = send(
        "/v1/algo/ada/toolbox", key=owner_key, body=b"abc", content_type="application/octet-stream"
    )
    assert took and base64.b64decode(answer.json()["result"]) == b"cba"


def test_the_hot_path_writes_the_request_line_and_counts_the_request(toolbox, owner_key, caplog):
    counted = metrics.HTTP_REQUESTS.labels(method="POST", route="api-invoke", status="200")
    before = counted._value.get()
    with caplog.at_level("INFO", logger="marketplace.requests"):
        answer, took = send("/v1/algo/ada/toolbox", key=owner_key, body={"text": "hi"})
    assert took and answer.status == 200
    (line,) = [r for r in caplog.records if r.name == "marketplace.requests"]
    assert line.request_id == answer.headers["X-Request-ID"]
    assert line.route == "api-invoke" and line.status == 200 and line.model == "ada/toolbox"
    assert (
        line.key_prefix == owner_key[:KEY_LOOKUP_LENGTH] and line.invocation_status == "succeeded"
    )
    assert counted._value.get() == before + 1
