"""Malformed requests: oversized bodies (invoke, upload, JSON APIs), invalid JSON, wrong
content types, invalid UTF-8, deeply nested JSON, bad Authorization forms, huge, duplicate
and invalid query strings, bad Host headers, invalid methods. Under /v1 every one is a 4xx
in the documented shape {"error": {"message", "error_type"}}; an HTML page answers with a
page; nothing is a 500. What the test client cannot send (chunked bodies without a length,
huge headers, request lines no client would write) goes over a raw socket to gunicorn,
the production web server, running this project on the test database."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests.catalog.factories import ModelFactory, VersionFactory
from tests.conftest import assert_error_shape
from tests.factories import UserFactory, make_key
from tests.live_platform import free_port

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
INVOKE = "/v1/algo/ada/echo"


@pytest.fixture
def caller(db):
    """A model to call (resolvable, never run: every request here is refused first) and a
    key client of its owner."""
    ada = UserFactory(username="ada")
    VersionFactory(model=ModelFactory(owner=ada.personal_team, slug="echo", visibility="public"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(ada)[1]}")
    client.user = ada
    return client


def _post(client, path, body: bytes, content_type: str, **extra):
    return client.generic("POST", path, body, content_type=content_type, **extra)


# -- invoke: bodies -------------------------------------------------------------------------


def test_invoke_body_over_the_limit_is_413(caller, settings):
    limit = settings.GATEWAY_MAX_BODY_BYTES
    assert limit == 10 * MIB
    for content_type in ("application/json", "text/plain", "application/octet-stream"):
        body = b'"' + b"x" * limit + b'"'
        response = _post(caller, INVOKE, body, content_type)
        error = assert_error_shape(response, 413, "RequestTooLargeError")
        assert "limit" in error["message"]
    # A Content-Length that claims more than the limit is refused before reading.
    response = _post(caller, INVOKE, b"{}", "application/json", CONTENT_LENGTH=str(limit + 1))
    assert_error_shape(response, 413, "RequestTooLargeError")


INVALID_BODIES = [
    (b"{", "application/json", "not valid JSON"),
    (b"{'a': 1}", "application/json", "not valid JSON"),
    (b"NaN-ish", "application/json", "not valid JSON"),
    (b'"\xff\xfe"', "application/json", "not valid JSON"),
    (b"\xef\xbb\xbf\xff", "application/json", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", "too deeply"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json", "too deeply"),
    (b"\xff\xfe\xfd", "text/plain; charset=utf-8", "charset"),
    (b"<a/>", "application/xml", "content type"),
    (b"a=1", "application/x-www-form-urlencoded", "content type"),
    (b"--x\r\n", "multipart/form-data; boundary=x", "content type"),
    (b"", "", "send a body"),
]


@pytest.mark.parametrize(
    "body,content_type,words",
    INVALID_BODIES,
    ids=[f"{c or 'none'}-{i}" for i, (_, c, _w) in enumerate(INVALID_BODIES)],
)
def test_invoke_invalid_bodies_are_400(caller, body, content_type, words):
    response = _post(caller, INVOKE, body, content_type)
    error = assert_error_shape(response, 400, "InputError")
    assert words.lower() in error["message"].lower(), error


@pytest.mark.parametrize(
    "query",
    [
        "timeout=abc",
        "timeout=-1",
        "timeout=0",
        "timeout=nan",
        "timeout=inf",
        "timeout=1e999",
        "timeout=3001",
        "timeout=%00",
        "timeout=1&timeout=abc",
        "output=bogus",
        "output=%00",
        "stdout=maybe",
        "stdout=%00",
        "webhook=javascript:alert(1)",
        "webhook=%00",
        "webhook=file:///etc/passwd",
    ],
)
def test_invoke_invalid_query_parameters_are_400(caller, query):
    response = _post(caller, f"{INVOKE}?{query}", b'{"text": "hi"}', "application/json")
    assert_error_shape(response, 400, "InputError")


# -- authorization forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Simple",
        "Simple ",
        "Bearer",
        "Bearer  ",
        "Basic dXNlcjpwYXNz",
        "Digest username=x",
        "Simple simXXXXXXXXXXXXXXXXXXXXXXXX",
        "Simple " + "a" * 10_000,
        "Simple a b c",
        "Simple \u043a\u043b\u044e\u0447",
        "Simple \x00\x01",
        "sim' OR '1'='1",
        "Token ../../etc/passwd",
        ",,,,",
    ],
)
def test_bad_authorization_forms_are_401(db, header):
    for method, path in (("POST", INVOKE), ("GET", "/v1/keys"), ("GET", "/v1/me")):
        client = APIClient()
        response = client.generic(
            method, path, b"{}", content_type="application/json", HTTP_AUTHORIZATION=header
        )
        assert_error_shape(response, 401, "AuthenticationError")
        assert response.has_header("WWW-Authenticate")


# -- JSON APIs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,content_type,status",
    [
        (b"{", "application/json", 400),
        (b'{"name": "k", "scopes": ["algo://*"]', "application/json", 400),
        (b'"\xff"', "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"null", "application/json", 400),
        (b'{"name": "k\\u0000", "scopes": ["algo://*"]}', "application/json", 400),
        (b'{"name": "' + b"k" * 2_000_000 + b'", "scopes": []}', "application/json", 400),
        (b"name=k", "text/plain", 415),
        (b"<k/>", "application/xml", 415),
    ],
    ids=lambda v: v[:12] if isinstance(v, bytes) else str(v),
)
def test_json_api_malformed_bodies(caller, body, content_type, status):
    response = _post(caller, "/v1/keys", body, content_type)
    assert_error_shape(response, status)


def test_json_api_body_over_the_limit(caller, settings):
    body = b'{"name": "' + b"k" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + b'"}'
    response = _post(caller, "/v1/keys", body, "application/json")
    assert_error_shape(response, 413)


def test_upload_over_the_package_limit_is_413(caller, settings):
    settings.PACKAGE_MAX_UPLOAD_BYTES = MIB
    package = io.BytesIO(b"\0" * (MIB + 1))
    package.name = "model.zip"
    response = caller.post("/v1/models/ada", {"package": package}, format="multipart")
    error = assert_error_shape(response, 413)
    assert "limit" in error["message"] or "large" in error["message"]


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"garbage", "multipart/form-data; boundary=nope"),
        (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n", "multipart/form-data; boundary=b"),
        (b"x", "multipart/form-data"),
        (b"{", "application/json"),
        (b"\xff", "application/octet-stream"),
    ],
)
def test_upload_malformed_bodies_are_4xx(caller, body, content_type):
    response = _post(caller, "/v1/models/ada", body, content_type)
    assert 400 <= response.status_code < 500, response.content
    assert_error_shape(response, response.status_code)


# -- query strings, methods, hosts (test client) ------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "page=-1",
        "page=0",
        "page=1e9",
        "page=abc",
        "page=99999999999999999999",
        "page=1&page=2&page=-3",
        "page_size=0",
        "page_size=1000000",
        "page=%00",
        "search=%00",
        "search=%ff%fe",
        "search=" + "a" * 50_000,
        "tags=" + ",".join(["x"] * 5000),
        "&".join(f"p{i}=1" for i in range(2000)),
        "sort=%00",
        "%%%",
        "=&=&==",
    ],
    ids=lambda q: q[:30],
)
def test_invalid_query_strings(caller, query):
    for path in ("/v1/models", "/v1/keys", "/v1/models/ada/echo/versions"):
        response = caller.get(f"{path}?{query}")
        assert response.status_code < 500, (path, query, response.content[:200])
        if response.status_code >= 400:
            assert_error_shape(response, response.status_code)
    for path in ("/explore/", "/ada", "/ada/echo", "/pricing/"):
        response = Client().get(f"{path}?{query}")
        assert response.status_code < 500, (path, query)
        assert response["Content-Type"].startswith("text/html")


def test_usage_report_invalid_parameters(caller):
    team = caller.user.personal_team.slug
    for query in (
        "start=abc",
        "start=2025-13-45",
        "end=%00",
        "start=2030-01-01&end=2020-01-01",
        "group_by=%00",
        "group_by=drop table",
        "format=%00",
        "start=99999-01-01",
        "start=-0001-01-01",
    ):
        response = caller.get(f"/v1/teams/{team}/usage?{query}")
        assert response.status_code < 500, (query, response.content[:200])
        if response.status_code >= 400:
            assert_error_shape(response, response.status_code)


@pytest.mark.parametrize(
    "method", ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO", "PROPFIND"]
)
def test_invalid_methods(caller, method):
    for path in ("/v1/models", INVOKE, "/v1/me"):
        response = caller.generic(method, path)
        assert response.status_code in (200, 204, 401, 403, 405), (method, path)
        if response.status_code >= 400:
            assert_error_shape(response, response.status_code)
    client = Client()
    client.force_login(caller.user)
    for path in ("/explore/", "/ada/echo", "/keys/", "/"):
        response = client.generic(method, path)
        assert response.status_code in (200, 405), (method, path, response.status_code)
        if response.status_code == 405:  # a page that says so, not an empty body
            assert response["Content-Type"].startswith("text/html")
            assert b"does not accept" in response.content, (method, path)
            assert "GET" in response["Allow"]


@pytest.mark.parametrize(
    "host",
    ["evil.example", "bad host", "a" * 300, "localhost\x00", "[::1", "@"],
)
def test_bad_host_headers_are_400(db, host):
    response = APIClient().get("/v1/models", HTTP_HOST=host)
    assert_error_shape(response, 400)
    response = Client().get("/explore/", HTTP_HOST=host)
    assert response.status_code == 400
    assert b"<html" in response.content.lower()


# -- over a raw socket, to gunicorn ----------------------------------------------------------


@pytest.fixture
def gunicorn(transactional_db):
    """gunicorn serving this project on the test database (sees committed rows only)."""
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgresql://{db['USER']}:{db.get('PASSWORD') or ''}@"
            f"{(db.get('HOST') or '').replace('/', '%2F')}:{db.get('PORT') or 5432}/{db['NAME']}"
        ),
        "LOG_FORMAT": "plain",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "marketplace.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "30",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    yield port
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def raw(port: int, data: bytes, *, read_timeout: float = 90) -> tuple[int, dict, bytes]:
    """Send bytes as they are; the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        # The server may answer and close while we are still sending.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1."), answer[:300]
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return status, headers, body


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


def _shaped(status: int, headers: dict, body: bytes) -> dict:
    import json

    assert headers.get("content-type", "").startswith("application/json"), (status, body[:300])
    error = json.loads(body)["error"]
    assert error["message"] and error["error_type"], error
    return error


@pytest.mark.slow
def test_raw_requests_to_gunicorn(gunicorn):
    port = gunicorn
    ada = UserFactory(username="ada")
    VersionFactory(model=ModelFactory(owner=ada.personal_team, slug="echo", visibility="public"))
    secret = make_key(ada)[1]
    auth = f"Authorization: Simple {secret}\r\n".encode()
    host = b"Host: 127.0.0.1\r\n"

    # Chunked, no Content-Length, over the limit: 413 in shape.
    chunk = b"x" * MIB
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(11)) + b"0\r\n\r\n"
    status, headers, body = raw(
        port,
        b"POST /v1/algo/ada/echo HTTP/1.1\r\n"
        + host
        + auth
        + b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + chunked,
    )
    assert status == 413, (status, body[:300])
    assert _shaped(status, headers, body)["error_type"] == "RequestTooLargeError"

    # Chunked JSON that is not JSON: 400 in shape (the body is read, not taken as empty).
    status, headers, body = raw(
        port,
        b"POST /v1/algo/ada/echo HTTP/1.1\r\n"
        + host
        + auth
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\n{oops\r\n0\r\n\r\n",
    )
    assert status == 400, (status, body[:300])
    assert "JSON" in _shaped(status, headers, body)["message"]

    # Bad Host headers: 400, in shape under /v1, a page elsewhere.
    for bad in (b"evil.example", b"bad host", b"a" * 300, b"[::1"):
        status, headers, body = raw(
            port, b"GET /v1/models HTTP/1.1\r\nHost: " + bad + b"\r\nConnection: close\r\n\r\n"
        )
        assert status == 400, (bad, status)
        _shaped(status, headers, body)
        status, headers, body = raw(
            port, b"GET /explore/ HTTP/1.1\r\nHost: " + bad + b"\r\nConnection: close\r\n\r\n"
        )
        assert status == 400 and b"<html" in body.lower(), (bad, status, body[:200])

    # Invalid and unknown methods.
    for method in (b"FOO", b"PROPFIND", b"TRACE"):
        status, headers, body = raw(
            port, method + b" /v1/models HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
        )
        assert status == 405, (method, status)
        _shaped(status, headers, body)

    # What gunicorn refuses itself (before the application): a 4xx, never a 5xx.
    for request in (
        b"GET /v1/models HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /v1/models?" + b"a" * 20_000 + b" HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /v1/models HTTP/1.1\r\n"
        + host
        + b"".join(b"X-H%d: 1\r\n" % i for i in range(200))
        + b"\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET /v1/models HTTP/9.9\r\n" + host + b"\r\n",
        b"POST /v1/algo/ada/echo HTTP/1.1\r\n" + host + b"Content-Length: abc\r\n\r\n",
        b"POST /v1/algo/ada/echo HTTP/1.1\r\n" + host + b"Content-Length: -5\r\n\r\n",
        b"POST /v1/algo/ada/echo HTTP/1.1\r\n"
        + host
        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\n" + host + b"Bad Header Name: x\r\n\r\n",
    ):
        status, headers, body = raw(port, request)
        assert 400 <= status < 500, (request[:60], status, body[:200])

    # And the server still answers normally afterwards.
    status, headers, body = raw(
        port, b"GET /v1/models HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n"
    )
    assert status == 200, (status, body[:200])


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b'{"text": "a\\u0000b"}', "application/json"),
        (b'"\\u0000"', "application/json"),
        (b'{"\\u0000": 1}', "application/json"),
        (b"a\x00b", "text/plain"),
        (b"\x00" * 64, "application/octet-stream"),
    ],
    ids=["json-value", "json-string", "json-key", "text", "binary"],
)
def test_invoke_nul_characters_are_accepted_or_refused_never_a_500(caller, body, content_type):
    """PostgreSQL text and jsonb cannot hold NUL: the input must not crash the write of the
    invocation that records it (here the call then finds no runner: a 503, in shape)."""
    response = _post(caller, INVOKE, body, content_type)
    assert response.status_code in (400, 503), response.content
    assert_error_shape(response, response.status_code)


@pytest.mark.parametrize(
    "project", ["p" * 100_000, "a\x00b", "\u202e\ufeff", "../../etc", "x\r\nSet-Cookie: a=b"]
)
def test_invoke_odd_project_headers_are_never_a_500(caller, project):
    response = _post(caller, INVOKE, b'{"text": "hi"}', "application/json", HTTP_X_PROJECT=project)
    assert response.status_code in (400, 503), response.content
    assert_error_shape(response, response.status_code)


def test_html_upload_over_the_limit_is_a_page_with_a_message(caller, settings):
    settings.PACKAGE_MAX_UPLOAD_BYTES = MIB
    client = Client()
    client.force_login(caller.user)
    package = io.BytesIO(b"\0" * (MIB + 1))
    package.name = "model.zip"
    response = client.post("/new/", {"owner": "ada", "package": package}, follow=True)
    assert response.status_code in (200, 400, 413), response.status_code
    assert response["Content-Type"].startswith("text/html")
    assert b"limit" in response.content or b"large" in response.content
    for body, content_type in (
        (b"\xff\xfe", "multipart/form-data; boundary=x"),
        (b"owner=%ff%fe&name=%00", "application/x-www-form-urlencoded"),
    ):
        response = client.generic("POST", "/new/", body, content_type=content_type)
        assert 200 <= response.status_code < 500, response.status_code
        assert response["Content-Type"].startswith("text/html")
