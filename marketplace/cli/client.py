"""The HTTP side of the command-line tool: errors, configuration and `ApiClient`.

Standard library only, so that the tool adds no dependency and runs in any CI image."""

from __future__ import annotations

import http.client
import ipaddress
import json as _json
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8000"
ENV_API_URL = "MARKETPLACE_API_URL"
ENV_API_KEY = "MARKETPLACE_API_KEY"
DEFAULT_TIMEOUT = 60.0
SNIPPET_LENGTH = 300


def tool_version() -> str:
    try:
        return version("marketplace")
    except PackageNotFoundError:
        return "unknown"


# -- errors ------------------------------------------------------------------------------------


class CliError(Exception):
    """An error the user can do something about: printed as one message, never a traceback."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(CliError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


class NetworkError(CliError):
    """The marketplace could not be reached at all (refused, DNS, timeout, TLS, reset)."""

    def __init__(self, api_url: str, reason: str):
        super().__init__(f"cannot reach the marketplace at {api_url}: {reason}")
        self.api_url = api_url
        self.reason = reason


class ApiError(CliError):
    """The marketplace answered with an HTTP error status."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        *,
        body: bytes = b"",
        retry_after: str | None = None,
    ):
        self.status = status
        self.error_type = error_type
        self.detail = message
        self.body = body
        self.retry_after = retry_after
        head = f"HTTP {status} {error_type}" if error_type else f"HTTP {status}"
        text = f"{head}: {message}" if message else head
        if retry_after:
            text += f" (retry after {retry_after} s)"
        super().__init__(text)


def snippet(body: bytes, limit: int = SNIPPET_LENGTH) -> str:
    """A short, single-line view of a response body that is not the JSON we expected."""
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_from_response(status: int, headers: Message | Mapping[str, str], body: bytes) -> ApiError:
    """An `ApiError` from an error response: the documented `{"error": {...}}` body when there is
    one, else a truncated view of whatever came back (a proxy's HTML page, say)."""
    retry_after = headers.get("Retry-After") if headers is not None else None
    try:
        payload = _json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return ApiError(
                status,
                str(error["message"]),
                str(error.get("error_type") or "") or None,
                body=body,
                retry_after=retry_after,
            )
        if isinstance(error, str) and error:
            return ApiError(status, error, body=body, retry_after=retry_after)
        if isinstance(payload.get("detail"), str):
            return ApiError(status, payload["detail"], body=body, retry_after=retry_after)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    text = snippet(body) if body.strip() else phrase
    return ApiError(status, text, body=body, retry_after=retry_after)


# -- configuration -----------------------------------------------------------------------------


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    if base and os.path.isabs(base):
        return Path(base) / "marketplace"
    try:
        return Path.home() / ".config" / "marketplace"
    except RuntimeError:
        raise CliError("cannot find your home folder: set XDG_CONFIG_HOME") from None


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, str]:
    """What `marketplace login` saved: {"api_url": ..., "api_key": ...}, or {} when nothing."""
    try:
        path = credentials_path()
    except CliError:
        return {}  # no home folder: nothing can have been saved
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = _json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CliError(f"{path} is not valid: run `marketplace login` again, or delete the file")
    return {k: v for k in ("api_url", "api_key") if isinstance(v := data.get(k), str) and v}


def save_credentials(api_url: str, api_key: str) -> Path:
    """Write the credentials file atomically, readable by its owner only (0600)."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            _json.dump({"api_url": api_url, "api_key": api_key}, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def normalize_api_url(url: str) -> str:
    """`https://host/` and `https://host/v1` both mean the marketplace at `https://host`."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"invalid API URL {url!r}: expected something like https://marketplace.example.com"
        )
    return url


@dataclass
class Settings:
    api_url: str
    api_key: str | None
    url_source: str  # "--api-url", "MARKETPLACE_API_URL", the credentials file, or "default"
    key_source: str | None


def resolve_settings(
    cli_url: str | None = None, cli_key: str | None = None, *, ignore_bad_file: bool = False
) -> Settings:
    """Options override environment variables, which override what `marketplace login` saved."""
    env_url = os.environ.get(ENV_API_URL, "").strip()
    env_key = os.environ.get(ENV_API_KEY, "").strip()
    saved: dict[str, str] = {}
    if not (cli_url or env_url) or not (cli_key or env_key):
        try:
            saved = load_credentials()
        except CliError:
            if not ignore_bad_file:
                raise
    saved_path = str(credentials_path())
    if cli_url:
        url, url_source = cli_url, "--api-url"
    elif env_url:
        url, url_source = env_url, ENV_API_URL
    elif saved.get("api_url"):
        url, url_source = saved["api_url"], saved_path
    else:
        url, url_source = DEFAULT_API_URL, "default"
    if cli_key:
        key, key_source = cli_key.strip(), "--api-key"
    elif env_key:
        key, key_source = env_key, ENV_API_KEY
    elif saved.get("api_key"):
        key, key_source = saved["api_key"], saved_path
    else:
        key, key_source = None, None
    return Settings(normalize_api_url(url), key, url_source, key_source)


def is_local_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- HTTP --------------------------------------------------------------------------------------


class _UploadBody:
    """A request body read in blocks by http.client, reporting each block to `progress`."""

    def __init__(self, data: bytes, progress: Callable[[int, int], None]):
        self._data = memoryview(data)
        self._sent = 0
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        total = len(self._data)
        end = total if size is None or size < 0 else min(total, self._sent + size)
        chunk = bytes(self._data[self._sent : end])
        self._sent = end
        if chunk:
            self._progress(self._sent, total)
        return chunk


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only for GET/HEAD on the same host (http -> https, say), so that a POST
    body is never silently dropped and the key is never sent to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old_host = urllib.parse.urlsplit(req.full_url).hostname
        new_host = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).hostname
        if req.get_method() not in ("GET", "HEAD") or old_host != new_host:
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class ApiClient:
    """A thin client of the marketplace's REST API (v1).

    `request` returns `(status, headers, body)` for any HTTP answer, errors included, and
    raises `NetworkError` only when no answer came back. `call_json` adds the JSON decoding
    and turns error statuses into `ApiError`."""

    def __init__(
        self, base_url: str, api_key: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ):
        self.base_url = base_url.rstrip("/")
        if urllib.parse.urlsplit(self.base_url).scheme not in ("http", "https"):
            raise UsageError(f"invalid API URL {base_url!r}: it must start with http(s)://")
        self.api_key = api_key
        self.timeout = timeout
        self.user_agent = (
            f"marketplace-cli/{tool_version()} Python/{sys.version_info[0]}.{sys.version_info[1]}"
        )
        self._opener = urllib.request.build_opener(_SameHostRedirects())

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        url = self.base_url + (path if path.startswith("/") else "/" + path)
        if query:
            pairs = []
            for key, value in query.items():
                if value is None:
                    continue
                values = value if isinstance(value, list | tuple) else [value]
                for item in values:
                    if isinstance(item, bool):
                        item = "true" if item else "false"
                    pairs.append((key, str(item)))
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[int, Message, bytes]:
        send_headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if self.api_key:
            send_headers["Authorization"] = f"Simple {self.api_key}"
        body: Any = None
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        elif data is not None:
            body = bytes(data)
        if headers:
            send_headers.update(headers)
        if body is not None:
            send_headers["Content-Length"] = str(len(body))
            if progress is not None:
                body = _UploadBody(body, progress)
        # The base URL is checked to be http(s) when the client is made.
        req = urllib.request.Request(  # noqa: S310
            self.url(path, query), data=body, headers=send_headers, method=method.upper()
        )
        wait = timeout if timeout is not None else self.timeout
        try:
            try:
                with self._opener.open(req, timeout=wait) as response:
                    return response.status, response.headers, response.read()
            except urllib.error.HTTPError as exc:
                with exc:
                    return exc.code, exc.headers, exc.read()
        except urllib.error.URLError as exc:
            raise NetworkError(self.base_url, _describe(exc.reason, wait)) from None
        except (OSError, http.client.HTTPException) as exc:
            raise NetworkError(self.base_url, _describe(exc, wait)) from None

    def call_json(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any
    ) -> tuple[int, Any]:
        """Send a request and decode the JSON answer; any status outside `ok` raises."""
        status, headers, body = self.request(method, path, **kwargs)
        if status not in ok:
            if 300 <= status < 400:
                location = headers.get("Location", "?")
                raise CliError(
                    f"the marketplace at {self.base_url} answered HTTP {status}, redirecting "
                    f"to {location}: use that address as the API URL (--api-url)"
                )
            raise error_from_response(status, headers, body)
        return status, self.decode(status, body)

    def decode(self, status: int, body: bytes) -> Any:
        try:
            return _json.loads(body)
        except ValueError:
            raise CliError(
                f"the marketplace at {self.base_url} answered HTTP {status} with something "
                f"that is not JSON: {snippet(body) or '(empty body)'}"
            ) from None


def _describe(reason: object, timeout: float) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer after {timeout:g} s (timed out)"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    text = str(reason)
    return text or type(reason).__name__


# -- upload progress ---------------------------------------------------------------------------


def format_size(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


class UploadProgress:
    """Bytes sent / total on stderr: a live line on a terminal, a few plain lines otherwise."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._last_draw = 0.0
        self._next_mark = 25
        self._started = time.monotonic()
        self._total = 0
        self.sent = 0

    def __call__(self, sent: int, total: int) -> None:
        self._total = total
        self.sent = sent
        percent = 100 * sent // total if total else 100
        if self.tty:
            now = time.monotonic()
            if sent < total and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            line = f"\r{self.label}: {format_size(sent)} / {format_size(total)} ({percent}%)"
            self.stream.write(line + "\x1b[K")
            self.stream.flush()
        elif sent < total:
            # Only large uploads get intermediate lines; the final one comes from finish().
            big = total >= 4 * 1024 * 1024
            while big and self._next_mark < 100 and percent >= self._next_mark:
                self.stream.write(
                    f"{self.label}: {format_size(sent)} / {format_size(total)} "
                    f"({self._next_mark}%)\n"
                )
                self._next_mark += 25
            self.stream.flush()

    def finish(self) -> None:
        elapsed = time.monotonic() - self._started
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(
            f"{self.label}: {format_size(self._total)} sent in {elapsed:.1f} s\n"
            if self._total
            else f"{self.label}: done\n"
        )
        self.stream.flush()
