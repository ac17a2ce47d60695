"""The one policy for what the platform sends out of this host on a tenant's behalf: webhooks,
calls to a model's own inference server, and (through execution.egress) sandboxed code.

Every URL here was written by someone we do not trust, so a destination is checked like this:
its name is resolved once; every address it resolves to must be outside DENIED_NETWORKS (the
host's loopback, private and link-local ranges, cloud metadata), unless the operator lets it
through with OUTBOUND_ALLOWED_NETWORKS; and the connection goes to the address that was
checked, never through a second lookup, so a DNS answer that changes in between (rebinding)
cannot point it elsewhere. A refusal happens before any connection, so it says nothing about
whether an internal port is open.

Redirects are never followed: a 3xx answer is a failure that says so. Following one would send
the request to a second destination chosen by the upstream; the owner of a webhook or an
inference server that moved gives its new URL instead.

What an upstream answered reaches our callers (and from them build logs and call results) only
as one short printable line: `short_line()`.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from marketplace.core.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Written out rather than taken from ipaddress.is_private / is_global: those also refuse the
# documentation ranges (which are real, routed addresses on some networks, including this
# platform's package mirror) and their meaning changes between Python versions.
DENIED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network", with the unspecified address 0.0.0.0
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # shared address space (carrier-grade NAT, cluster networks)
        "100.100.100.200/32",  # Alibaba Cloud metadata (inside the range above)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack metadata (inside the range above)
        "172.16.0.0/12",  # private (RFC 1918)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # private (RFC 1918)
        "198.18.0.0/15",  # benchmarking, used inside networks
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, with the broadcast address 255.255.255.255
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard-only
        "64:ff9b:1::/48",  # local-use NAT64, whose embedded IPv4 address has no fixed place
        "fc00::/7",  # unique local
        "fd00:ec2::254/128",  # AWS metadata over IPv6 (inside the range above)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed on some networks)
        "ff00::/8",  # multicast
    )
)

# IPv6 forms that carry an IPv4 address in their last 32 bits: the IPv4 address is checked too.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
SHORT_LINE_CHARACTERS = 100


class OutboundError(Exception):
    """The request did not get an answer; the message is safe to show to the tenant."""


class OutboundRefused(OutboundError):
    """The destination is not one the platform sends to. Raised before connecting."""


class OutboundTimeout(OutboundError):
    pass


def short_line(raw: bytes | str, limit: int = SHORT_LINE_CHARACTERS) -> str:
    """At most `limit` printable characters of what an upstream said, on one line."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    printable = "".join(ch if ch.isprintable() else " " for ch in text[: limit * 4])
    line = " ".join(printable.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: mapped, compatible, translated, NAT64,
    6to4 and Teredo (server and client) forms."""
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in network for network in (_IPV4_COMPATIBLE, _IPV4_TRANSLATED, _NAT64)):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_denied_address(address: IPAddress) -> bool:
    """Whether the address is one the platform never sends to unless the operator allows it."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return True  # a zone (fe80::1%eth0) only makes sense on the host's own links
        if any(is_denied_address(inner) for inner in _embedded_ipv4(address)):
            return True
    return any(
        address in network for network in DENIED_NETWORKS if address.version == network.version
    )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def normalized_hostname(host: str) -> str:
    """The ASCII, lower-case form of a URL's host, as DNS and the Host header want it."""
    host = host.strip().rstrip(".").lower()
    if not host:
        raise OutboundRefused("the URL has no host")
    if _ip_literal(host) is not None:
        return str(_ip_literal(host))
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise OutboundRefused("the URL's host is not a valid name") from None
    if not all(ch.isalnum() or ch in "-._" for ch in ascii_host):
        raise OutboundRefused("the URL's host is not a valid name")
    return ascii_host


@dataclass(frozen=True)
class AllowedDestination:
    """One entry of OUTBOUND_ALLOWED_NETWORKS: a network or a host name, on any port or one."""

    network: IPNetwork | None
    hostname: str | None
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> AllowedDestination:
        text, port = entry.strip(), None
        if text.startswith("["):  # [v6]:port or [v6]
            host, _, rest = text[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        elif text.count(":") == 1:  # host:port, v4:port, cidr:port
            host, port_text = text.split(":")
        else:  # a name, an IPv4 or an IPv6 address or network, without a port
            host, port_text = text, ""
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ImproperlyConfigured(f"OUTBOUND_ALLOWED_NETWORKS: bad port in {entry!r}")
            port = int(port_text)
        try:
            return cls(ipaddress.ip_network(host, strict=False), None, port)
        except ValueError:
            pass
        try:
            return cls(None, normalized_hostname(host), port)
        except OutboundRefused:
            raise ImproperlyConfigured(
                f"OUTBOUND_ALLOWED_NETWORKS: {entry!r} is not a host, an address or a network"
            ) from None

    def admits(self, hostname: str, port: int, address: IPAddress) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.hostname is not None:
            return self.hostname == hostname
        return address.version == self.network.version and address in self.network


class OutboundPolicy:
    """Which destinations the platform sends to: any public address, and what the operator
    allows."""

    def __init__(self, allowed: Iterable[str] = ()):
        self.allowed = tuple(AllowedDestination.parse(entry) for entry in allowed if entry.strip())

    @classmethod
    def from_settings(cls) -> OutboundPolicy:
        entries = getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", ())
        if isinstance(entries, str):
            entries = entries.split(",")
        return cls(entries)

    def admits(self, hostname: str, port: int, address: IPAddress) -> bool:
        if any(entry.admits(hostname, port, address) for entry in self.allowed):
            return True
        return not is_denied_address(address)

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for host:port, each one checked; the one DNS lookup.
        Raises OutboundRefused when any address is denied, OutboundError when none is found."""
        hostname = normalized_hostname(host)
        literal = _ip_literal(hostname)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = socket.getaddrinfo(
                    hostname, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except (OSError, UnicodeError):
                raise OutboundError(f"{hostname} does not resolve") from None
            addresses = list(
                dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos)
            )
            if not addresses:
                raise OutboundError(f"{hostname} does not resolve")
        if any(not self.admits(hostname, port, address) for address in addresses):
            what = "is" if literal is not None else "resolves to"
            raise OutboundRefused(
                f"{hostname} {what} a loopback, private, link-local or metadata address, "
                "which the platform does not send to"
            )
        return [str(address) for address in addresses]


@dataclass(frozen=True)
class OutboundTarget:
    """An http(s) URL taken apart: where to connect, and what to ask for there."""

    scheme: str
    hostname: str
    port: int
    request_target: str

    @classmethod
    def from_url(cls, url: str) -> OutboundTarget:
        if any(not ch.isprintable() or ch.isspace() for ch in url):
            raise OutboundRefused("the URL contains spaces or control characters")
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise OutboundRefused("the URL is not valid") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise OutboundRefused("the URL must be http:// or https://")
        if parts.username is not None or parts.password is not None:
            raise OutboundRefused("the URL must not contain credentials (user:password@)")
        hostname = normalized_hostname(parts.hostname or "")
        request_target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(
            scheme,
            hostname,
            port or (443 if scheme == "https" else 80),
            # An IRI's path may hold any printable character; a request line holds ASCII.
            "".join(ch if ch.isascii() else urllib.parse.quote(ch) for ch in request_target),
        )


def check_public_url(url: str, *, policy: OutboundPolicy | None = None) -> None:
    """Raise OutboundRefused when `url` is not http(s), carries credentials, or its host is or
    resolves to an address the policy denies. A host that does not resolve (yet) passes: the
    request itself is checked again when it is sent."""
    target = OutboundTarget.from_url(url)
    try:
        (policy or OutboundPolicy.from_settings()).resolve(target.hostname, target.port)
    except OutboundRefused:
        raise
    except OutboundError:
        pass


def require_public_url(url: str, *, field: str) -> None:
    """check_public_url for a URL a tenant gives: an InputError (400) naming the field."""
    try:
        check_public_url(url)
    except OutboundRefused as refusal:
        raise InputError(f"{field}: {refusal}", fields={field: ["not allowed"]}) from None


def connect_pinned(
    addresses: list[str], port: int, *, timeout: float, hostname: str
) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers, all of them
    tried within `timeout`. Raises OutboundTimeout when the last one did not answer in time,
    OutboundError when none would connect."""
    deadline = time.monotonic() + timeout
    reason, timed_out = "no address", False
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        try:
            return socket.create_connection((address, port), timeout=remaining)
        except TimeoutError:
            reason, timed_out = "timed out", True
        except OSError as error:
            reason, timed_out = error.strerror or type(error).__name__, False
    if timed_out:
        raise OutboundTimeout(f"{hostname}:{port} did not accept a connection in {timeout:g}s")
    raise OutboundError(f"could not connect to {hostname}:{port} ({reason})")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """http.client takes the Host header from `host`; the socket comes from the checked
    addresses."""

    def __init__(self, target: OutboundTarget, addresses: list[str], timeout: float):
        super().__init__(target.hostname, target.port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = connect_pinned(
            self._addresses, self.port, timeout=self.timeout, hostname=self.host
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = 443

    def connect(self) -> None:
        super().connect()
        context = ssl.create_default_context()  # verifies the certificate and its host name
        try:
            self.sock = context.wrap_socket(self.sock, server_hostname=self.host)
        except ssl.SSLError as error:
            self.sock.close()
            raise OutboundError(f"TLS with {self.host} failed: {error.reason or 'error'}") from None


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Message
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def summary(self) -> str:
        """`HTTP <status>`, then one short line of the body when it has one."""
        line = short_line(self.body)
        return f"HTTP {self.status}: {line}" if line else f"HTTP {self.status}"


def outbound_request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    policy: OutboundPolicy | None = None,
) -> OutboundResponse:
    """Send one request to a URL a tenant gave, under the policy; `timeout` bounds the whole
    exchange. Returns the answer whatever its status, except a redirect. Raises
    OutboundRefused (nothing was sent), OutboundTimeout or OutboundError."""
    target = OutboundTarget.from_url(url)
    addresses = (policy or OutboundPolicy.from_settings()).resolve(target.hostname, target.port)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target, addresses, timeout)
    expired = threading.Event()

    def expire():
        # A server that answers one byte at a time never trips a per-read timeout.
        expired.set()
        if connection.sock is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(
            method,
            target.request_target,
            body=body,
            headers={**(headers or {}), "Connection": "close"},
        )
        response = connection.getresponse()
        payload = response.read(max_response_bytes + 1)
    except OutboundError:
        raise
    except TimeoutError:
        raise OutboundTimeout(
            f"{target.hostname} did not answer within {timeout:g} seconds"
        ) from None
    except (http.client.HTTPException, OSError) as error:
        if expired.is_set():
            raise OutboundTimeout(
                f"{target.hostname} did not answer within {timeout:g} seconds"
            ) from None
        reason = (
            "the answer is not valid HTTP"
            if isinstance(error, http.client.HTTPException)
            else f"the connection failed ({error.strerror or type(error).__name__})"
        )
        raise OutboundError(f"{target.hostname}: {reason}") from None
    finally:
        watchdog.cancel()
        connection.close()
    # The watchdog fired: whatever was read may be cut short by its shutdown (a bounded read
    # returns what it has, without an error), so the exchange did not finish in time.
    if expired.is_set():
        raise OutboundTimeout(f"{target.hostname} did not answer within {timeout:g} seconds")
    if len(payload) > max_response_bytes:
        raise OutboundError(
            f"{target.hostname}: the answer is larger than {max_response_bytes} bytes"
        )
    if 300 <= response.status < 400:
        raise OutboundError(f"HTTP {response.status}: redirects are not followed")
    return OutboundResponse(response.status, response.headers, payload)
