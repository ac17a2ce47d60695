"""The `marketplace` command-line tool against a small real HTTP server.

No database and no Django: the server below is a `ThreadingHTTPServer` on 127.0.0.1 that
implements just enough of the v1 contract the tool relies on (and checks what it is sent: it
parses the multipart upload with the email package and opens the zip). Everything runs in
process through `main(argv)`, except a few tests that run the real console entry point."""

from __future__ import annotations

import base64
import email.policy
import hashlib
import io
import itertools
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import tomllib
import urllib.parse
import zipfile
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from marketplace import cli
from marketplace.cli import commands

ALICE_KEY = "mk_alice123" + "a" * 32
BOB_KEY = "mk_bobbob12" + "b" * 32
KEYS = {
    ALICE_KEY: {"username": "alice", "prefix": ALICE_KEY[:11]},
    BOB_KEY: {"username": "bob", "prefix": BOB_KEY[:11]},
}
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # not UTF-8: must reach files unmangled

CATALOG = [
    {
        "owner": "alice",
        "name": "sentiment",
        "title": "Sentiment analysis",
        "tagline": "Positive/negative score for English text",
        "task": "text-classification",
        "tags": ["nlp"],
        "latest_version": "1.2.0",
    },
    {
        "owner": "acme",
        "name": "resnet-imagenet-classifier",
        "title": "ResNet",
        "tagline": "Classifies photos into the thousand ImageNet classes " * 4,
        "task": "image-classification",
        "tags": ["vision"],
        "latest_version": None,
    },
    {
        "owner": "alice",
        "name": "summarizer",
        "title": "Summaries",
        "tagline": "Short English summaries",
        "task": "summarization",
        "tags": ["nlp"],
        "latest_version": "0.3.1",
    },
]


# -- the fake marketplace ------------------------------------------------------------------------


class FakeMarketplace:
    """State and routes of the fake server; every request is recorded in `requests`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.uploads: list[dict] = []
        self.builds: dict[str, dict] = {}
        self.published: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def paths(self, method: str | None = None) -> list[str]:
        return [r["path"] for r in self.requests if method in (None, r["method"])]

    # -- routing ------------------------------------------------------------------------------

    def handle(self, method, path, query, headers, body):
        self.requests.append(
            {"method": method, "path": path, "query": query, "headers": headers, "body": body}
        )
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["v1", "models"] and len(parts) == 2 and method == "GET":
            return self.search(query)
        user = self.authenticate(headers.get("authorization", ""))
        if user is None:
            return _error(401, "AuthenticationError", "Invalid API key")
        if parts == ["v1", "me"] and method == "GET":
            info = KEYS[headers["authorization"].split(" ", 1)[1]]
            return 200, {
                "username": user,
                "email": f"{user}@example.com",
                "key": {"prefix": info["prefix"], "name": "laptop", "team": user},
                "teams": [{"slug": user, "role": "owner"}],
            }
        if parts[:2] == ["v1", "models"] and len(parts) == 3 and method == "POST":
            return self.upload(parts[2], headers, body)
        if parts[:2] == ["v1", "models"] and len(parts) == 6 and parts[4] == "builds":
            return self.build_status(parts[5])
        if parts[:2] == ["v1", "models"] and len(parts) == 7 and parts[6] == "logs":
            return self.build_logs(parts[5], int(query.get("offset", ["0"])[0]))
        if parts[:2] == ["v1", "models"] and parts[4:] == ["versions"] and method == "POST":
            return self.publish(parts[2], parts[3], json.loads(body))
        if parts[:2] == ["v1", "algo"] and method == "POST":
            return self.invoke(parts[2:], query, headers, body)
        return _error(404, "NotFoundError", f"No route for {method} {path}")

    @staticmethod
    def authenticate(header: str) -> str | None:
        scheme, _, key = header.partition(" ")
        if scheme != "Simple" or key not in KEYS:
            return None
        return KEYS[key]["username"]

    def upload(self, owner, headers, body):
        content_type = headers.get("content-type", "")
        assert content_type.startswith("multipart/form-data; boundary=")
        assert int(headers["content-length"]) == len(body)
        message = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        assert message.is_multipart()
        fields, package, filename = {}, None, None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                package, filename = part.get_payload(decode=True), part.get_filename()
                assert name == "package"
            else:
                fields[name] = part.get_payload(decode=True).decode()
        if package is None:
            return _error(400, "InputError", "package: no file")
        files = {}
        with zipfile.ZipFile(io.BytesIO(package)) as archive:
            assert archive.testzip() is None
            for info in archive.infolist():
                files[info.filename] = {
                    "mode": info.external_attr >> 16,
                    "data": archive.read(info),
                }
        manifest = tomllib.loads(files["model.toml"]["data"].decode())
        model_name = fields.get("name") or manifest["name"]
        self.uploads.append(
            {"owner": owner, "fields": fields, "filename": filename, "files": files}
        )
        build_id = hashlib.sha256(package).hexdigest()[:12]
        if build_id in self.builds:
            return 200, {"build": self.build_view(build_id)}
        self.builds[build_id] = {
            "id": build_id,
            "model": f"{owner}/{model_name}",
            "status": "queued",
            "fails": bool(manifest.get("fail_build")),
            "log": f"Build {build_id} queued\n",
            "polls": 0,
        }
        return 202, {"build": self.build_view(build_id)}

    def build_view(self, build_id):
        build = self.builds[build_id]
        view = {k: build[k] for k in ("id", "model", "status")}
        view["error"] = (
            {"message": "pip install failed: no such package 'nonexistent-pkg'"}
            if build["status"] == "failed"
            else None
        )
        return view

    def build_status(self, build_id):
        build = self.builds.get(build_id)
        if build is None:
            return _error(404, "NotFoundError", "No such build")
        build["polls"] += 1
        if build["status"] == "queued":
            build["status"] = "building"
            build["log"] += "Installing requirements...\n"
        elif build["status"] == "building":
            if build["fails"]:
                build["status"] = "failed"
                build["log"] += "ERROR: No matching distribution for nonexistent-pkg\n"
            else:
                build["status"] = "succeeded"
                build["log"] += "Smoke test passed\n"
        return 200, {"build": self.build_view(build_id)}

    def build_logs(self, build_id, offset):
        build = self.builds[build_id]
        log = build["log"].encode()
        return 200, {
            "text": log[offset:].decode(),
            "offset": len(log),
            "complete": build["status"] in ("succeeded", "failed"),
        }

    def publish(self, owner, name, data):
        build = self.builds.get(data.get("build"))
        if build is None or build["status"] != "succeeded":
            return _error(409, "ConflictError", "No successful build to publish")
        self.published.append({"model": f"{owner}/{name}", **data})
        version = f"1.{len(self.published)}.0"
        return 201, {
            "version": version,
            "visibility": data["visibility"],
            "endpoint": f"{self.url}/v1/algo/{owner}/{name}/{version}",
            "sample_input": {"text": "I love it"},
        }

    def invoke(self, target, query, headers, body):
        name = target[1]
        content_type = headers.get("content-type", "")
        raw = query.get("output") == ["raw"]
        if name == "pricey":
            return _error(402, "PaymentRequiredError", "The team's budget is exhausted")
        if name == "flaky":
            return 502, b"<html><body><h1>502 Bad Gateway</h1>" + b"x" * 2000 + b"</body></html>"
        if name == "broken":
            return 200, {
                "error": {
                    "message": "division by zero",
                    "error_type": "AlgorithmError",
                    "stacktrace": 'Traceback (most recent call last):\n  File "predict.py"',
                },
                "request_id": "req-1",
            }
        if name == "image":
            result, kind = PNG_BYTES, "binary"
        elif content_type.startswith("application/json"):
            result, kind = {"received": json.loads(body), "version": target[2:]}, "json"
        elif content_type.startswith("text/plain"):
            result, kind = f"you said: {body.decode()}", "text"
        else:
            result, kind = body[::-1], "binary"
        if raw:
            if kind == "binary":
                return 200, result, "application/octet-stream"
            if kind == "text":
                return 200, result.encode(), "text/plain; charset=utf-8"
            return 200, result
        metadata = {"content_type": kind, "duration": 0.0123}
        if query.get("stdout") == ["true"]:
            metadata["stdout"] = "loading weights\n"
        if kind == "binary":
            result = base64.b64encode(result).decode()
        return 200, {"result": result, "metadata": metadata, "request_id": "req-2"}

    def search(self, query):
        text = query.get("search", [""])[0].lower()
        task = query.get("task", [None])[0]
        tags = [t for t in query.get("tags", [""])[0].split(",") if t]
        page_size = int(query.get("page_size", ["20"])[0])
        page = int(query.get("page", ["1"])[0])
        found = [
            m
            for m in CATALOG
            if (not text or text in (m["name"] + m["title"] + m["tagline"]).lower())
            and (not task or m["task"] == task)
            and all(t in m["tags"] for t in tags)
        ]
        start = (page - 1) * page_size
        more = start + page_size < len(found)
        return 200, {
            "count": len(found),
            "next": f"{self.url}/v1/models?page={page + 1}" if more else None,
            "previous": None,
            "results": found[start : start + page_size],
            "facets": {"task": {}},
        }


def _error(status, error_type, message):
    return status, {"error": {"message": message, "error_type": error_type}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _serve(self):
        fake = self.server.fake
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = urllib.parse.parse_qs(parsed.query)
        with fake.lock:
            answer = fake.handle(self.command, parsed.path, query, headers, body)
        status, payload, *content_type = answer
        if isinstance(payload, bytes):
            data = payload
            kind = content_type[0] if content_type else "text/html"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No real credentials, environment or terminal leak into a test; polling is fast."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MARKETPLACE_API_URL", raising=False)
    monkeypatch.delenv("MARKETPLACE_API_KEY", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(commands, "POLL_INTERVAL", 0.01)


@pytest.fixture
def fake():
    server = FakeMarketplace()
    yield server
    server.close()


@pytest.fixture
def env(monkeypatch, fake):
    """The environment a CI job would have: URL and key in variables."""
    monkeypatch.setenv("MARKETPLACE_API_URL", fake.url)
    monkeypatch.setenv("MARKETPLACE_API_KEY", ALICE_KEY)
    return fake


@pytest.fixture
def model_dir(tmp_path):
    root = tmp_path / "sentiment"
    root.mkdir()
    (root / "model.toml").write_text(
        'name = "sentiment"\nruntime = "python"\nentrypoint = "predict.py:apply"\n'
    )
    (root / "predict.py").write_text("def apply(x):\n    return x\n")
    (root / "README.md").write_text("# Sentiment\n")
    (root / "bin").mkdir()
    (root / "bin" / "prepare.sh").write_text("#!/bin/sh\necho ready\n")
    (root / "bin" / "prepare.sh").chmod(0o755)
    (root / "data").mkdir()
    (root / "data" / "weights.bin").write_bytes(os.urandom(4096))
    for ignored in (
        ".git",
        "__pycache__",
        ".venv/lib",
        "node_modules/left-pad",
        "data/__pycache__",
    ):
        (root / ignored).mkdir(parents=True)
        (root / ignored / "junk.txt").write_text("must not be uploaded")
    (root / "predict.pyc").write_bytes(b"\x00compiled")
    (root / ".DS_Store").write_bytes(b"\x00finder")
    (root / "latest.bin").symlink_to("data/weights.bin")
    return root


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def login(capsys, fake, key=ALICE_KEY, monkeypatch=None):
    monkeypatch.setattr(sys, "stdin", io.StringIO(key + "\n"))
    return run(capsys, "login", "--api-url", fake.url)


# -- login and configuration ---------------------------------------------------------------------


def test_login_checks_the_key_and_saves_it_for_the_owner_only(capsys, monkeypatch, fake, tmp_path):
    code, out, err = login(capsys, fake, monkeypatch=monkeypatch)

    assert code == 0, err
    assert out.strip() == f"Logged in to {fake.url} as alice (key {ALICE_KEY[:11]}…)"
    assert ALICE_KEY not in out + err
    path = tmp_path / "config" / "marketplace" / "credentials.json"
    assert json.loads(path.read_text()) == {"api_url": fake.url, "api_key": ALICE_KEY}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fake.requests[0]["headers"]["authorization"] == f"Simple {ALICE_KEY}"
    assert fake.paths() == ["/v1/me"]


def test_login_prompts_with_getpass_on_a_terminal(capsys, monkeypatch, fake):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    prompts = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(
        commands.getpass, "getpass", lambda prompt: prompts.append(prompt) or BOB_KEY
    )

    code, out, _ = run(capsys, "--api-url", fake.url + "/", "login")

    assert code == 0
    assert "as bob" in out
    assert prompts == [f"API key for {fake.url}: "]


def test_login_with_a_wrong_key_saves_nothing(capsys, monkeypatch, fake, tmp_path):
    code, out, err = login(capsys, fake, key="mk_wrong", monkeypatch=monkeypatch)

    assert code == 1
    assert out == ""
    assert f"the key was not accepted by {fake.url}: Invalid API key" in err
    assert "Nothing was saved" in err
    assert "Traceback" not in err
    assert not (tmp_path / "config" / "marketplace" / "credentials.json").exists()


def test_login_with_an_empty_key_is_a_usage_error(capsys, monkeypatch, fake):
    code, _, err = login(capsys, fake, key="", monkeypatch=monkeypatch)
    assert code == 2
    assert "no API key given" in err
    assert fake.requests == []


def test_saved_login_is_used_and_environment_and_options_override_it(capsys, monkeypatch, fake):
    assert login(capsys, fake, monkeypatch=monkeypatch)[0] == 0

    code, out, _ = run(capsys, "whoami")
    assert code == 0
    assert out.splitlines()[0] == "alice <alice@example.com>"
    assert f"API:   {fake.url}" in out

    monkeypatch.setenv("MARKETPLACE_API_KEY", BOB_KEY)
    assert run(capsys, "whoami")[1].startswith("bob")

    assert run(capsys, "whoami", "--api-key", ALICE_KEY)[1].startswith("alice")
    assert run(capsys, "--api-key", ALICE_KEY, "whoami")[1].startswith("alice")

    monkeypatch.setenv("MARKETPLACE_API_URL", "http://127.0.0.1:9")  # discard port: refused
    code, _, err = run(capsys, "whoami")
    assert code == 1
    assert "cannot reach the marketplace at http://127.0.0.1:9" in err
    code, out, _ = run(capsys, "whoami", "--api-url", fake.url, "--json")
    assert code == 0
    assert json.loads(out)["username"] == "bob"


def test_without_any_key_a_401_says_how_to_log_in(capsys, fake):
    code, _, err = run(capsys, "--api-url", fake.url, "whoami")
    assert code == 1
    assert "HTTP 401 AuthenticationError: Invalid API key" in err
    assert "marketplace login" in err


def test_a_damaged_credentials_file_is_reported_and_login_repairs_it(
    capsys, monkeypatch, fake, tmp_path
):
    path = tmp_path / "config" / "marketplace" / "credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")

    code, _, err = run(capsys, "whoami")
    assert code == 1
    assert "is not valid" in err

    assert login(capsys, fake, monkeypatch=monkeypatch)[0] == 0
    assert json.loads(path.read_text())["api_key"] == ALICE_KEY


def test_invalid_api_url_is_a_usage_error(capsys):
    code, _, err = run(capsys, "--api-url", "ftp://example.com", "whoami")
    assert code == 2
    assert "invalid API URL" in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert re.fullmatch(r"marketplace \S+\n", out)


# -- packaging -----------------------------------------------------------------------------------


def _entries(data: bytes) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: info for info in archive.infolist()}


def test_zip_folder_skips_ignored_files_and_keeps_exec_bits(model_dir):
    data = cli.zip_folder(model_dir)
    entries = _entries(data)

    assert sorted(entries) == [
        "README.md",
        "bin/prepare.sh",
        "data/weights.bin",
        "latest.bin",
        "model.toml",
        "predict.py",
    ]
    assert entries["bin/prepare.sh"].external_attr >> 16 == stat.S_IFREG | 0o755
    assert entries["predict.py"].external_attr >> 16 == stat.S_IFREG | 0o644
    link = entries["latest.bin"]
    assert stat.S_ISLNK(link.external_attr >> 16)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read(link) == b"data/weights.bin"
        assert archive.read("data/weights.bin") == (model_dir / "data/weights.bin").read_bytes()
    # Deterministic: the same folder is the same package (and so the same build).
    assert cli.zip_folder(model_dir) == data


def test_zip_folder_refuses_symlinks_out_of_the_folder(model_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (model_dir / "data" / "secret.txt").symlink_to(secret)
    with pytest.raises(cli.CliError, match=r"data/secret.txt is a symlink .* outside the model"):
        cli.zip_folder(model_dir)

    (model_dir / "data" / "secret.txt").unlink()
    (model_dir / "escape").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(cli.CliError, match="escape is a symlink"):
        cli.zip_folder(model_dir)


def test_zip_folder_stores_an_inner_directory_symlink_without_following_it(model_dir):
    (model_dir / "assets").symlink_to("data", target_is_directory=True)
    entries = _entries(cli.zip_folder(model_dir))
    assert stat.S_ISLNK(entries["assets"].external_attr >> 16)
    assert not any(name.startswith("assets/") for name in entries)


def test_multipart_body_parses_back(tmp_path):
    blob = bytes(range(256)) * 8 + b"\r\n--not-a-boundary\r\n"
    content_type, body = cli.multipart_body(
        {"name": "sentiment", "note": "héllo"},
        {"package": ('my "model".zip', blob, "application/zip")},
    )
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["name"].get_payload(decode=True) == b"sentiment"
    assert parts["note"].get_payload(decode=True).decode() == "héllo"
    assert parts["package"].get_filename() == "my %22model%22.zip"
    assert parts["package"].get_content_type() == "application/zip"
    assert parts["package"].get_payload(decode=True) == blob


# -- publish -------------------------------------------------------------------------------------


def test_publish_uploads_follows_the_build_and_publishes_a_version(capsys, env, model_dir):
    code, out, err = run(
        capsys,
        "publish",
        model_dir,
        "--bump",
        "minor",
        "--visibility",
        "public",
        "--release-notes",
        "First cut",
    )

    assert code == 0, err
    fake = env
    [upload] = fake.uploads
    assert upload["owner"] == "alice"  # from /v1/me
    assert upload["filename"] == "sentiment.zip"
    assert set(upload["files"]) == {
        "README.md",
        "bin/prepare.sh",
        "data/weights.bin",
        "latest.bin",
        "model.toml",
        "predict.py",
    }
    assert upload["files"]["bin/prepare.sh"]["mode"] & 0o111 == 0o111
    assert upload["files"]["predict.py"]["mode"] & 0o111 == 0
    [build_id] = fake.builds

    # The build was polled until it finished and its log streamed, in order, to stderr.
    base = f"/v1/models/alice/sentiment/builds/{build_id}"
    assert fake.paths("GET").count(base) >= 2
    offsets = [r["query"]["offset"][0] for r in fake.requests if r["path"] == base + "/logs"]
    assert offsets[0] == "0"
    assert [int(o) for o in offsets] == sorted(int(o) for o in offsets)
    log = f"Build {build_id} queued\nInstalling requirements...\nSmoke test passed\n"
    assert log in err
    assert err.count("Installing requirements") == 1

    assert fake.published == [
        {
            "model": "alice/sentiment",
            "bump": "minor",
            "visibility": "public",
            "release_notes": "First cut",
            "build": build_id,
        }
    ]
    lines = out.splitlines()
    assert lines[0] == "Published alice/sentiment 1.1.0 (public)"
    assert lines[1] == f"Endpoint: {fake.url}/v1/algo/alice/sentiment/1.1.0"
    assert "curl -X POST" in lines[3]
    assert "Authorization: Simple $MARKETPLACE_API_KEY" in lines[3]
    assert '{"text": "I love it"}' in lines[3]
    assert ALICE_KEY not in out + err
    assert "Uploading sentiment.zip to alice" in err  # plain lines: stderr is not a terminal


def test_publish_with_owner_name_and_notes_file(capsys, env, model_dir, tmp_path):
    notes = tmp_path / "NOTES.md"
    notes.write_text("Faster\n")
    code, out, err = run(
        capsys,
        "publish",
        model_dir,
        "--bump=major",
        "--visibility=private",
        "--owner",
        "acme",
        "--name",
        "sentiment-v2",
        "--release-notes-file",
        notes,
    )
    assert code == 0, err
    assert "/v1/me" not in env.paths()
    assert env.uploads[0]["owner"] == "acme"
    assert env.uploads[0]["fields"] == {"name": "sentiment-v2"}
    assert env.published[0]["model"] == "acme/sentiment-v2"
    assert env.published[0]["release_notes"] == "Faster\n"
    assert out.startswith("Published acme/sentiment-v2 1.1.0 (private)\n")


def test_publish_with_a_failing_build_shows_the_error(capsys, env, model_dir):
    (model_dir / "model.toml").write_text('name = "sentiment"\nfail_build = true\n')

    code, out, err = run(capsys, "publish", model_dir, "--bump", "patch", "--visibility", "public")

    assert code == 1
    assert out == ""
    assert "ERROR: No matching distribution for nonexistent-pkg" in err
    assert "failed: pip install failed: no such package 'nonexistent-pkg'" in err
    assert env.published == []
    assert not any(p.endswith("/versions") for p in env.paths("POST"))


def test_publish_no_wait_prints_the_build_id(capsys, env, model_dir):
    code, out, _ = run(
        capsys, "publish", model_dir, "--bump", "patch", "--visibility", "public", "--no-wait"
    )
    assert code == 0
    [build_id] = env.builds
    assert out == build_id + "\n"
    assert not any("/builds/" in p for p in env.paths())
    assert env.published == []


def test_publishing_the_same_package_again_reuses_its_build(capsys, env, model_dir):
    args = ("publish", model_dir, "--bump", "patch", "--visibility", "public")
    assert run(capsys, *args)[0] == 0
    polls = len(env.paths("GET"))

    code, out, err = run(capsys, *args)

    assert code == 0, err
    assert "Same package as build" in err
    assert len(env.builds) == 1
    assert len(env.paths("GET")) == polls + 1  # only /v1/me: the build had already succeeded
    assert [p["build"] for p in env.published] == list(env.builds) * 2
    assert out.startswith("Published alice/sentiment 1.2.0 (public)")


def test_publish_uploads_an_archive_as_it_is(capsys, env, model_dir, tmp_path):
    archive = tmp_path / "packaged.zip"
    archive.write_bytes(cli.zip_folder(model_dir))
    code, _, err = run(capsys, "publish", archive, "--bump", "patch", "--visibility", "public")
    assert code == 0, err
    assert env.uploads[0]["filename"] == "packaged.zip"


def test_publish_refuses_what_is_not_a_package(capsys, env, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = run(
        capsys, "publish", tmp_path / "notes.txt", "--bump", "patch", "--visibility", "public"
    )
    assert code == 2
    assert "neither a folder nor a package" in err
    code, _, err = run(
        capsys, "publish", tmp_path / "missing", "--bump", "patch", "--visibility", "public"
    )
    assert code == 2
    assert "no such folder or file" in err
    assert env.requests == []


def test_publish_needs_bump_and_visibility(capsys, env, model_dir):
    code, _, err = run(capsys, "publish", model_dir, "--bump", "huge", "--visibility", "public")
    assert code == 2
    assert "invalid choice" in err


# -- call ----------------------------------------------------------------------------------------


def test_call_with_json_prints_the_result_pretty(capsys, env):
    code, out, err = run(capsys, "call", "alice/sentiment/1.2", "-d", '{"text": "I love it"}')

    assert code == 0, err
    assert json.loads(out) == {"received": {"text": "I love it"}, "version": ["1.2"]}
    assert out.startswith("{\n  ")
    [request] = env.requests
    assert request["path"] == "/v1/algo/alice/sentiment/1.2"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["authorization"] == f"Simple {ALICE_KEY}"
    assert request["query"] == {}


def test_call_with_text_timeout_and_stdout(capsys, env):
    code, out, err = run(
        capsys, "call", "alice/echo", "--text", "héllo", "--timeout", "30", "--stdout"
    )
    assert code == 0, err
    assert out == "you said: héllo\n"
    assert "loading weights" in err
    request = env.requests[0]
    assert request["headers"]["content-type"].startswith("text/plain")
    assert request["query"] == {"timeout": ["30"], "stdout": ["true"]}


def test_call_with_a_file_writes_a_binary_result_to_output(capsys, env, tmp_path):
    source = tmp_path / "in.bin"
    source.write_bytes(b"\x00\x01\xff binary")
    target = tmp_path / "out.bin"

    code, out, err = run(capsys, "call", "alice/echo", "-D", source, "-o", target)

    assert code == 0, err
    assert out == ""
    assert target.read_bytes() == b"\x00\x01\xff binary"[::-1]
    assert env.requests[0]["headers"]["content-type"] == "application/octet-stream"
    assert env.requests[0]["body"] == b"\x00\x01\xff binary"
    assert "Wrote" in err


def test_call_binary_result_goes_to_stdout_as_bytes(capsysbinary, env, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"pixels")))
    code = cli.main(["call", "alice/image", "-D", "-"])
    out, _ = capsysbinary.readouterr()
    assert code == 0
    assert out == PNG_BYTES
    assert env.requests[0]["body"] == b"pixels"


def test_call_raw_output(capsys, env):
    code, out, _ = run(capsys, "call", "alice/echo", "--raw", "-d", "[1, 2]")
    assert code == 0
    assert json.loads(out) == {"received": [1, 2], "version": []}
    assert env.requests[0]["query"] == {"output": ["raw"]}

    code, out, _ = run(capsys, "call", "alice/echo", "--raw", "--text", "hi")
    assert code == 0
    assert out == "you said: hi"


def test_call_model_error_exits_1_with_the_stacktrace(capsys, env):
    code, out, err = run(capsys, "call", "alice/broken", "-d", "{}")
    assert code == 1
    assert out == ""
    assert "AlgorithmError: division by zero" in err
    assert "Traceback (most recent call last):" in err  # the model's, shown to its owner
    assert "req-1" in err


def test_call_payment_required_exits_1_with_the_message(capsys, env):
    code, out, err = run(capsys, "call", "alice/pricey", "-d", "{}")
    assert code == 1
    assert out == ""
    assert err.strip() == "HTTP 402 PaymentRequiredError: The team's budget is exhausted"


def test_call_non_json_error_body_is_shown_truncated(capsys, env):
    code, _, err = run(capsys, "call", "alice/flaky", "-d", "{}")
    assert code == 1
    assert err.startswith("HTTP 502: <html><body><h1>502 Bad Gateway</h1>")
    assert len(err) < 400
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["call", "alice/echo", "-d", "{'single': quotes}"], "-d is not valid JSON"),
        (["call", "alice", "-d", "{}"], "expected OWNER/NAME"),
        (["call", "a/b/c/d", "-d", "{}"], "expected OWNER/NAME"),
        (["call", "alice/echo", "-D", "/nonexistent/file"], "cannot read /nonexistent/file"),
        (["call", "alice/echo"], "one of the arguments"),
        (["call", "alice/echo", "-d", "{}", "--text", "x"], "not allowed with"),
        (["call", "alice/echo", "-d", "{}", "--timeout", "-1"], "must be more than 0"),
    ],
)
def test_call_usage_errors_exit_2_without_calling(capsys, env, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert env.requests == []


def test_unreachable_server_is_a_clear_message(capsys, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("MARKETPLACE_API_KEY", ALICE_KEY)
    code, out, err = run(capsys, "--api-url", f"http://127.0.0.1:{port}", "call", "a/b", "-d", "1")
    assert code == 1
    assert out == ""
    assert err.startswith(f"cannot reach the marketplace at http://127.0.0.1:{port}: ")
    assert "refused" in err.lower()
    assert "Traceback" not in err


# -- search --------------------------------------------------------------------------------------


def test_search_prints_an_aligned_table(capsys, env):
    code, out, err = run(
        capsys, "search", "English", "--task", "text-classification", "--tag", "nlp"
    )
    assert code == 0, err
    assert out.splitlines() == [
        "MODEL            VERSION  TASK                 TAGLINE",
        "alice/sentiment  1.2.0    text-classification  Positive/negative score for English text",
    ]
    assert env.requests[0]["query"] == {
        "search": ["English"],
        "task": ["text-classification"],
        "tags": ["nlp"],
        "page_size": ["20"],
        "page": ["1"],
    }
    assert "authorization" in env.requests[0]["headers"]


def test_search_truncates_to_the_terminal_width_and_pages(capsys, env, monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    code, out, err = run(capsys, "search", "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    assert all(len(line) <= 70 for line in lines)
    assert lines[2].startswith("acme/resnet-imagenet-classifier  -        image-classification")
    assert lines[2].endswith("…")
    assert "2 of 3 models" in err

    env.requests.clear()
    code, out, _ = run(capsys, "search", "--limit", "150")
    assert code == 0
    assert len(out.splitlines()) == 4
    assert [r["query"]["page_size"] for r in env.requests] == [["100"]]


def test_search_without_results(capsys, env):
    code, out, err = run(capsys, "search", "nothing-like-this")
    assert code == 0
    assert out == ""
    assert "No models match" in err


# -- the real entry point ------------------------------------------------------------------------


def _run_process(*argv, stdin=b"", extra_env=None):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("MARKETPLACE_") and k != "COLUMNS"
    }
    environment.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "marketplace.cli", *map(str, argv)],
        input=stdin,
        capture_output=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_entry_point_pipes_the_key_and_writes_binary_stdout(fake, tmp_path):
    config = {"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    done = _run_process("login", "--api-url", fake.url, stdin=ALICE_KEY.encode(), extra_env=config)
    assert done.returncode == 0, done.stderr
    assert b"Logged in" in done.stdout

    done = _run_process("call", "alice/image", "--text", "x", extra_env=config)
    assert done.returncode == 0, done.stderr
    assert done.stdout == PNG_BYTES


def test_entry_point_errors_have_no_traceback(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = _run_process(
        "search",
        "x",
        extra_env={
            "XDG_CONFIG_HOME": str(tmp_path),
            "MARKETPLACE_API_URL": f"http://127.0.0.1:{port}",
        },
    )
    assert done.returncode == 1
    assert done.stderr.startswith(b"cannot reach the marketplace")
    assert b"Traceback" not in done.stderr

    done = _run_process("call", "a/b", "-d", "{oops", extra_env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert done.returncode == 2
    assert b"-d is not valid JSON" in done.stderr


def test_a_build_is_looked_at_soon_then_less_and_less_often(monkeypatch):
    """The first look again comes after POLL_FIRST_INTERVAL, each next one POLL_BACKOFF
    times later, never more than POLL_SOON_INTERVAL apart for the first POLL_SOON_SECONDS
    of waiting, then never more than POLL_INTERVAL apart (no time passes: sleep is
    recorded)."""

    class Builds:
        looks = 0

        def call_json(self, method, path, query=None):
            if path.endswith("/logs"):
                return 200, {"text": "", "offset": 0, "complete": True}
            self.looks += 1
            status = "succeeded" if self.looks > 80 else "building"
            return 200, {"build": {"id": "b1", "status": status}}

    slept = []
    monkeypatch.setattr(commands, "POLL_INTERVAL", 1.0)
    monkeypatch.setattr(commands.time, "sleep", slept.append)
    build = commands.BuildFollower(Builds(), "alice/sentiment", "b1", timeout=3600).run()
    assert build["status"] == "succeeded"
    assert len(slept) == 80
    assert slept[0] == commands.POLL_FIRST_INTERVAL
    waited = list(itertools.accumulate(slept))
    for before, (a, b) in zip(waited, itertools.pairwise(slept), strict=False):
        longest = commands.POLL_SOON_INTERVAL if before < commands.POLL_SOON_SECONDS else 1.0
        assert b == min(a * commands.POLL_BACKOFF, longest)
    assert max(slept[:10]) == commands.POLL_SOON_INTERVAL
    assert slept[-1] == 1.0


def test_the_client_does_not_load_celery():
    """`marketplace publish` starts without Celery (half of its start time); Django
    processes, which have DJANGO_SETTINGS_MODULE, load it with the package."""
    import os
    import subprocess
    import sys

    probe = "import sys, marketplace.cli; print('celery' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    client = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert client.stdout.strip() == "False", client.stderr
    django_env = {**env, "DJANGO_SETTINGS_MODULE": "marketplace.settings"}
    probe = "import sys, marketplace; print(marketplace.celery_app.main)"
    server = subprocess.run(
        [sys.executable, "-c", probe], env=django_env, capture_output=True, text=True
    )
    assert server.stdout.strip() == "marketplace", server.stderr
