"""One function per command. Each takes the parsed arguments and the resolved `Settings`, writes
results to stdout and progress to stderr, and returns the exit status (or raises CliError)."""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import shlex
import shutil
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from .client import (
    ENV_API_KEY,
    ApiClient,
    ApiError,
    CliError,
    NetworkError,
    Settings,
    UploadProgress,
    UsageError,
    error_from_response,
    format_size,
    save_credentials,
)
from .packaging import build_package, multipart_body

# Following a build: the first look again after POLL_FIRST_INTERVAL seconds, each next one
# POLL_BACKOFF times later, up to POLL_SOON_INTERVAL for the first POLL_SOON_SECONDS of
# waiting, then up to POLL_INTERVAL. A build of a model with no requirements ends within a
# few seconds, and its publisher should not wait out most of a second more for it (looks a
# second apart made the CLI notice a build's end half a second late on average).
POLL_FIRST_INTERVAL = 0.05
POLL_BACKOFF = 1.5
POLL_SOON_INTERVAL = 0.25
POLL_SOON_SECONDS = 15.0
POLL_INTERVAL = 1.0
UPLOAD_TIMEOUT = 900.0  # socket timeout while the package is sent and the server answers
CALL_DEFAULT_TIMEOUT = 300  # the server's default for ?timeout=
POLL_RETRIES = 5  # consecutive network/5xx failures tolerated while following a build
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "cancelled", "error"})


def _out(text: str = "") -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _err(text: str = "") -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _client(settings: Settings, **kwargs: Any) -> ApiClient:
    return ApiClient(settings.api_url, settings.api_key, **kwargs)


def _me(client: ApiClient) -> dict:
    _, me = client.call_json("GET", "/v1/me")
    if not isinstance(me, dict) or not me.get("username"):
        raise CliError(f"unexpected answer from {client.base_url}/v1/me: {json.dumps(me)[:200]}")
    return me


def _key_prefix(me: dict, key: str) -> str:
    info = me.get("key")
    if isinstance(info, dict) and info.get("prefix"):
        return str(info["prefix"])
    return key[:8] if len(key) >= 24 else "****"


# -- login / whoami ----------------------------------------------------------------------------


def _read_key(api_url: str) -> str:
    stdin = sys.stdin
    if stdin is not None and _isatty(stdin):
        return getpass.getpass(f"API key for {api_url}: ")
    if stdin is None:
        return ""
    return stdin.readline()


def cmd_login(args, settings: Settings) -> int:
    api_url = settings.api_url
    explicit = getattr(args, "api_key", None)
    key = (explicit or _read_key(api_url)).strip()
    if not key:
        raise UsageError("no API key given (type it at the prompt, or pipe it on stdin)")
    client = ApiClient(api_url, key)
    try:
        me = _me(client)
    except ApiError as exc:
        if exc.status in (401, 403):
            raise CliError(
                f"the key was not accepted by {api_url}: {exc.detail or exc}. Nothing was saved."
            ) from None
        raise
    path = save_credentials(api_url, key)
    _out(f"Logged in to {api_url} as {me['username']} (key {_key_prefix(me, key)}…)")
    _err(f"Credentials saved to {path}")
    if settings.key_source == ENV_API_KEY:
        _err(f"Note: {ENV_API_KEY} is set and takes precedence over the saved key.")
    return 0


def cmd_whoami(args, settings: Settings) -> int:
    client = _client(settings)
    me = _me(client)
    if args.json:
        _out(json.dumps(me, indent=2, ensure_ascii=False))
        return 0
    email = f" <{me['email']}>" if me.get("email") else ""
    _out(f"{me['username']}{email}")
    _out(f"  API:   {settings.api_url}")
    key = me.get("key")
    if isinstance(key, dict):
        desc = f"{key.get('prefix', '?')}…"
        extra = ", ".join(str(key[k]) for k in ("name", "team") if key.get(k))
        _out(f"  Key:   {desc} ({extra})" if extra else f"  Key:   {desc}")
    teams = me.get("teams")
    if isinstance(teams, list) and teams:
        names = []
        for team in teams:
            if isinstance(team, dict):
                role = f" ({team['role']})" if team.get("role") else ""
                names.append(f"{team.get('slug', '?')}{role}")
        _out(f"  Teams: {', '.join(names)}")
    return 0


# -- publish -----------------------------------------------------------------------------------


def _build_of(payload: Any) -> dict:
    build = payload.get("build", payload) if isinstance(payload, dict) else None
    if not isinstance(build, dict) or not build.get("id"):
        raise CliError(f"unexpected answer about a build: {json.dumps(payload)[:300]}")
    return build


def _build_error(build: dict) -> str:
    error = build.get("error")
    if isinstance(error, dict):
        kind = error.get("error_type")
        message = error.get("message") or json.dumps(error)
        return f"{kind}: {message}" if kind else message
    return str(error) if error else "no reason given"


class BuildFollower:
    """Polls a build until it finishes, streaming its log to stderr as it grows."""

    def __init__(self, client: ApiClient, model: str, build_id: str, timeout: float):
        owner, name = model.split("/", 1)
        self.client = client
        self.base = f"/v1/models/{_segment(owner)}/{_segment(name)}/builds/{_segment(build_id)}"
        self.build_id = build_id
        self.timeout = timeout
        self.offset = 0
        self.logs_available = True
        self.log_ends_with_newline = True
        self.failures = 0

    def _get(self, path: str, query=None) -> Any:
        """GET with a little tolerance: a long build must not be lost to one network blip."""
        while True:
            try:
                return self.client.call_json("GET", path, query=query)[1]
            except (NetworkError, ApiError) as exc:
                transient = isinstance(exc, NetworkError) or exc.status in (429, 502, 503, 504)
                self.failures += 1
                if not transient or self.failures > POLL_RETRIES:
                    raise
                _err(f"(retrying: {exc})")
                time.sleep(max(POLL_INTERVAL, 0.01) * self.failures)

    def fetch_logs(self) -> bool:
        """Print whatever the log gained since the last look; True once it is complete."""
        if not self.logs_available:
            return True
        try:
            payload = self._get(self.base + "/logs", query={"offset": self.offset})
        except ApiError as exc:
            if exc.status == 404:
                self.logs_available = False
                return True
            raise
        self.failures = 0
        if not isinstance(payload, dict):
            return True
        text = payload.get("text") or ""
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()
            self.log_ends_with_newline = text.endswith("\n")
        new_offset = payload.get("offset")
        if isinstance(new_offset, int) and new_offset >= self.offset:
            self.offset = new_offset
        else:
            self.offset += len(text.encode("utf-8"))
        return bool(payload.get("complete"))

    def status(self) -> dict:
        build = _build_of(self._get(self.base))
        self.failures = 0
        return build

    def run(self) -> dict:
        deadline = time.monotonic() + self.timeout
        last_status = None
        delay = min(POLL_FIRST_INTERVAL, POLL_INTERVAL)
        waited = 0.0
        while True:
            build = self.status()
            status = build.get("status")
            if status != last_status and status not in TERMINAL_STATUSES:
                self._newline()
                _err(f"Build {self.build_id}: {status}")
            last_status = status
            complete = self.fetch_logs()
            if status in TERMINAL_STATUSES:
                # Let the log catch up with the end of the build (bounded).
                for _ in range(10):
                    if complete:
                        break
                    time.sleep(min(delay, 0.5))
                    complete = self.fetch_logs()
                self._newline()
                return build
            if time.monotonic() >= deadline:
                self._newline()
                raise CliError(
                    f"build {self.build_id} is still {status} after {self.timeout:g} s; it goes "
                    "on on the server (raise --timeout, or publish again later: the same package "
                    "is the same build)"
                )
            time.sleep(delay)
            waited += delay
            longest = POLL_SOON_INTERVAL if waited < POLL_SOON_SECONDS else POLL_INTERVAL
            delay = min(delay * POLL_BACKOFF, max(longest, POLL_FIRST_INTERVAL), POLL_INTERVAL)

    def _newline(self) -> None:
        if not self.log_ends_with_newline:
            sys.stderr.write("\n")
            self.log_ends_with_newline = True


def _release_notes(args) -> str:
    if args.release_notes_file:
        if args.release_notes_file == "-":
            return sys.stdin.read()
        try:
            return Path(args.release_notes_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise UsageError(f"cannot read {args.release_notes_file}: {reason}") from None
    return args.release_notes or ""


def _curl_example(endpoint: str, sample: Any) -> str:
    if isinstance(sample, str):
        content_type, data = "text/plain", sample
    else:
        content_type = "application/json"
        data = json.dumps(sample if sample is not None else {}, ensure_ascii=False)
    return (
        f'curl -X POST -H "Authorization: Simple ${ENV_API_KEY}" '
        f"-H 'Content-Type: {content_type}' -d {shlex.quote(data)} {shlex.quote(endpoint)}"
    )


def cmd_publish(args, settings: Settings) -> int:
    release_notes = _release_notes(args)
    filename, package, content_type = build_package(args.path)
    client = _client(settings)
    owner = args.owner or _me(client)["username"]
    fields = {"name": args.name} if args.name else {}
    form_type, body = multipart_body(fields, {"package": (filename, package, content_type)})

    progress = UploadProgress(f"Uploading {filename} to {owner}")
    try:
        status, headers, response = client.request(
            "POST",
            f"/v1/models/{_segment(owner)}",
            data=body,
            headers={"Content-Type": form_type},
            timeout=UPLOAD_TIMEOUT,
            progress=progress,
        )
    except NetworkError as exc:
        if progress.tty:
            sys.stderr.write("\n")
        if not progress.sent:
            raise
        raise CliError(
            f"the upload to {settings.api_url} broke off after {format_size(progress.sent)} "
            f"of {format_size(len(body))}: {exc.reason} (a proxy's or the server's size limit "
            "may have been reached)"
        ) from None
    progress.finish()
    if status not in (200, 201, 202):
        raise error_from_response(status, headers, response)
    build = _build_of(client.decode(status, response))
    build_id = str(build["id"])
    model = str(build.get("model") or "")
    if model.count("/") != 1:
        model = f"{owner}/{args.name}" if args.name else ""
    if not model:
        raise CliError(f"the server did not say which model build {build_id} belongs to")
    if status == 200:
        _err(f"Same package as build {build_id} of {model} ({build.get('status')})")
    else:
        _err(f"Build {build_id} of {model} created ({build.get('status')})")

    if args.no_wait:
        _out(build_id)
        _err(f"Not waiting: follow it at /v1/models/{model}/builds/{build_id}")
        return 0

    if build.get("status") not in TERMINAL_STATUSES:
        build = BuildFollower(client, model, build_id, args.timeout).run()
    if build.get("status") != "succeeded":
        raise CliError(f"Build {build_id} of {model} {build.get('status')}: {_build_error(build)}")
    _err(f"Build {build_id} succeeded")

    owner_, name = model.split("/", 1)
    try:
        _, version = client.call_json(
            "POST",
            f"/v1/models/{_segment(owner_)}/{_segment(name)}/versions",
            ok=(200, 201),
            json={
                "bump": args.bump,
                "visibility": args.visibility,
                "release_notes": release_notes,
                "build": build_id,
            },
        )
    except ApiError as exc:
        raise CliError(f"build {build_id} succeeded but publishing it failed: {exc}") from None
    if not isinstance(version, dict) or not version.get("version"):
        raise CliError(f"unexpected answer to the publication: {json.dumps(version)[:300]}")
    number = version["version"]
    visibility = version.get("visibility") or args.visibility
    endpoint = version.get("endpoint") or f"{settings.api_url}/v1/algo/{model}/{number}"
    _out(f"Published {model} {number} ({visibility})")
    _out(f"Endpoint: {endpoint}")
    _out("Try it:")
    _out("  " + _curl_example(endpoint, version.get("sample_input")))
    return 0


# -- call --------------------------------------------------------------------------------------


def parse_target(text: str) -> list[str]:
    """OWNER/NAME[/VERSION] (an `algo://` prefix is accepted, as Algorithmia wrote them)."""
    value = text.strip().removeprefix("algo://").strip("/")
    parts = value.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"expected OWNER/NAME or OWNER/NAME/VERSION, not {text!r}")
    return parts


def _call_input(args) -> tuple[bytes, str]:
    if args.data is not None:
        try:
            json.loads(args.data)
        except ValueError as exc:
            raise UsageError(f"-d is not valid JSON: {exc}") from None
        return args.data.encode("utf-8"), "application/json"
    if args.text is not None:
        return args.text.encode("utf-8"), "text/plain; charset=utf-8"
    if args.data_file == "-":
        return sys.stdin.buffer.read(), "application/octet-stream"
    try:
        return Path(args.data_file).read_bytes(), "application/octet-stream"
    except OSError as exc:
        raise UsageError(f"cannot read {args.data_file}: {exc.strerror or exc}") from None


def _emit(data: bytes, args, *, binary: bool) -> None:
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        _err(f"Wrote {format_size(len(data))} to {args.output}")
        return
    if binary and _isatty(sys.stdout):
        raise CliError(
            f"the result is binary ({format_size(len(data))}): "
            "write it to a file with -o FILE or redirect stdout"
        )
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:  # a text-only stream (some test harnesses)
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()


def _model_error(payload: Any) -> dict | None:
    """The model-raised error of a 200 answer: {"error": {...}, "request_id": ...}."""
    if isinstance(payload, dict) and set(payload) <= {"error", "request_id", "metadata"}:
        error = payload.get("error")
        if isinstance(error, dict) and "message" in error:
            return error
    return None


def _report_model_error(error: dict, request_id: Any) -> None:
    kind = error.get("error_type") or "AlgorithmError"
    _err(f"{kind}: {error.get('message')}")
    if error.get("stacktrace"):
        _err(str(error["stacktrace"]).rstrip("\n"))
    if request_id:
        _err(f"(request {request_id})")


def cmd_call(args, settings: Settings) -> int:
    parts = parse_target(args.target)
    payload, content_type = _call_input(args)
    query = {
        "timeout": args.timeout,
        "output": "raw" if args.raw else None,
        "stdout": True if args.stdout else None,
    }
    wait = (args.timeout or CALL_DEFAULT_TIMEOUT) + 60
    client = _client(settings, timeout=wait)
    status, headers, body = client.request(
        "POST",
        "/v1/algo/" + "/".join(_segment(p) for p in parts),
        data=payload,
        headers={"Content-Type": content_type},
        query=query,
    )
    if status >= 300:
        raise error_from_response(status, headers, body)

    if args.raw:
        # The bare result; a model error still comes back as the error object.
        error = None
        if "json" in (headers.get("Content-Type") or ""):
            try:
                error = _model_error(json.loads(body))
            except ValueError:
                error = None
        if error is not None:
            _report_model_error(error, None)
            return 1
        kind = headers.get("Content-Type") or ""
        textual = kind.startswith(("text/", "application/json"))
        if textual and not args.output and _isatty(sys.stdout) and not body.endswith(b"\n"):
            body += b"\n"
        _emit(body, args, binary=not textual)
        return 0

    envelope = client.decode(status, body)
    error = _model_error(envelope)
    if error is not None:
        _report_model_error(error, envelope.get("request_id"))
        return 1
    if not isinstance(envelope, dict) or "result" not in envelope:
        raise CliError(f"unexpected answer to the call: {json.dumps(envelope)[:300]}")
    metadata = envelope.get("metadata") if isinstance(envelope.get("metadata"), dict) else {}
    if args.stdout and metadata.get("stdout"):
        _err("--- model stdout ---")
        _err(str(metadata["stdout"]))
        _err("--- end of model stdout ---")
    result = envelope["result"]
    kind = metadata.get("content_type") or "json"
    if kind == "binary":
        try:
            data = base64.b64decode(result or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise CliError("the binary result is not valid base64") from None
        _emit(data, args, binary=True)
    elif kind == "text" and isinstance(result, str):
        _emit(
            (result if result.endswith("\n") else result + "\n").encode("utf-8"), args, binary=False
        )
    else:
        text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
        _emit(text.encode("utf-8"), args, binary=False)
    return 0


# -- search ------------------------------------------------------------------------------------


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def format_table(rows: list[tuple[str, ...]], width: int) -> list[str]:
    """Aligned columns; the last one (and so each line) is cut to `width`."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False))
        lines.append(_truncate(f"{head}  {row[-1]}".rstrip(), width))
    return lines


def cmd_search(args, settings: Settings) -> int:
    client = _client(settings)
    limit = args.limit
    page_size = min(limit, 100)
    query: dict[str, Any] = {
        "search": args.text or None,
        "task": args.task,
        "tags": ",".join(args.tag) if args.tag else None,
        "page_size": page_size,
    }
    results: list[dict] = []
    count = None
    page = 1
    while len(results) < limit:
        _, payload = client.call_json("GET", "/v1/models", query={**query, "page": page})
        if isinstance(payload, list):  # an unpaginated answer
            payload = {"count": len(payload), "results": payload}
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            raise CliError(f"unexpected answer to the search: {json.dumps(payload)[:300]}")
        count = payload.get("count", count)
        results.extend(r for r in payload["results"] if isinstance(r, dict))
        if not payload.get("next") or not payload["results"]:
            break
        page += 1
    results = results[:limit]
    if args.json:
        _out(json.dumps({"count": count, "results": results}, indent=2, ensure_ascii=False))
        return 0
    if not results:
        _err(f"No models match {args.text!r}." if args.text else "No models found.")
        return 0
    rows = [("MODEL", "VERSION", "TASK", "TAGLINE")]
    for item in results:
        rows.append(
            (
                f"{item.get('owner', '?')}/{item.get('name', '?')}",
                str(item.get("latest_version") or "-"),
                str(item.get("task") or "-"),
                " ".join(str(item.get("tagline") or item.get("title") or "").split()),
            )
        )
    width = shutil.get_terminal_size((120, 24)).columns
    for line in format_table(rows, width):
        _out(line)
    if isinstance(count, int) and count > len(results):
        _err(f"{len(results)} of {count} models (--limit to see more)")
    return 0
