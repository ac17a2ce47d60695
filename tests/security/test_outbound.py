"""What the platform sends out of the host on a tenant's behalf (team webhooks, invocation
webhooks, budget alerts, calls to an `http` model's inference server) never reaches the
host's loopback, private, link-local or metadata addresses, through the real paths:

- at input time a literal internal address, or a name resolving to one, is a 400;
- at delivery time the name is resolved again, once, and the connection goes to the address
  that was checked (a DNS answer that changes, rebinding, reaches nothing);
- a redirect is not followed, to loopback or anywhere;
- what an upstream answered comes back as one short line, never its body;
- an operator's OUTBOUND_ALLOWED_NETWORKS lets one server through, and then delivery works
  and is signed.

The servers are real, on loopback; each records what reached it, so "refused" also means
"nothing arrived". Names under .tenant.test are answered by a stand-in resolver at the socket
level (socket.getaddrinfo), the one the platform's code calls."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from django.core.exceptions import ImproperlyConfigured

from billing.budgets import notifications
from billing.budgets import services as billing_services
from billing.budgets.selectors import current_month
from billing.models import MonthlySpend
from catalog import builder
from catalog import webhooks as catalog_webhooks
from catalog.models import Build, Webhook, WebhookDelivery
from execution.backends.http import forward
from marketplace.accounts import services as account_services
from marketplace.accounts.selectors import team_signing_secret
from marketplace.core.errors import InputError
from marketplace.core.outbound import (
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    OutboundTimeout,
    check_public_url,
    is_denied_address,
    outbound_request,
    short_line,
)
from marketplace.core.webhooks import DeliveryFailed, post_signed, sign
from tests.conftest import assert_error_shape
from tests.factories import UserFactory, make_key
from tests.receivers import allow_outbound

SECRET_BODY = "internal-secret-" + "x" * 200


# -- servers and names ------------------------------------------------------------------------


class Recorder:
    """A real HTTP server on `host` that records every request and answers with `answer`:
    (status, headers, body), or a callable of the handler."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, answer=(204, {}, b"")):
        self.requests: list[dict] = []
        self.answer = answer
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if callable(recorder.answer):
                    recorder.answer(self)
                    return
                status, headers, payload = recorder.answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class StandInDns:
    """socket.getaddrinfo answering names under .tenant.test from a table (a list of answers
    per name, one per lookup, the last repeated) and every other name as before."""

    def __init__(self, monkeypatch):
        self.table: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            name = host.decode() if isinstance(host, bytes) else str(host)
            if not name.endswith(".tenant.test"):
                return real(host, port, *args, **kwargs)
            self.lookups.append(name)
            answers = self.table.get(name)
            if not answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (address, int(port)) if ":" not in address else (address, int(port), 0, 0),
                )
                for address in addresses
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def answer(self, name: str, *answers: list[str]) -> None:
        self.table[name] = list(answers)


@pytest.fixture
def dns(monkeypatch):
    return StandInDns(monkeypatch)


@pytest.fixture
def acme(db):
    boss = UserFactory(username="boss")
    team = account_services.team_create(actor=boss, slug="acme", name="Acme")
    return team, boss


def api_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Simple {make_key(user)[1]}")
    return client


# -- the policy -------------------------------------------------------------------------------

DENIED = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "169.254.10.10",
    "100.64.0.1",
    "100.100.100.200",
    "0.0.0.0",  # noqa: S104 - an address refused, not one bound
    "0.1.2.3",
    "255.255.255.255",
    "224.0.0.1",
    "::",
    "::1",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::10.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]
ALLOWED = ["203.0.113.80", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", DENIED)
def test_internal_addresses_are_denied(address):
    import ipaddress

    assert is_denied_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed_documentation_ranges_included(address):
    import ipaddress

    assert not is_denied_address(ipaddress.ip_address(address))
    assert OutboundPolicy().resolve(address, 443) == [str(ipaddress.ip_address(address))]


def test_pypi_as_this_machine_resolves_it_is_allowed():
    check_public_url("https://pypi.org/simple/numpy/")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin",
        "http://localhost/",
        "http://[::1]:80/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://0x7f000001/",  # 127.0.0.1, as inet_aton reads it
        "http://2130706433/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0:8000/",
        "http://LOCALHOST./",
        "ftp://pypi.org/",
        "file:///etc/passwd",
        "http://user:password@pypi.org/",
        "http://pypi.org/a b",
        "https:///nohost",
    ],
)
def test_check_public_url_refuses(url):
    with pytest.raises(OutboundRefused):
        check_public_url(url)


def test_a_name_is_refused_when_any_of_its_addresses_is_internal(dns):
    dns.answer("mixed.tenant.test", ["198.51.100.7", "10.0.0.8"])
    with pytest.raises(OutboundRefused, match="resolves to"):
        check_public_url("https://mixed.tenant.test/hook")
    dns.answer("public.tenant.test", ["198.51.100.7", "203.0.113.9"])
    check_public_url("https://public.tenant.test/hook")
    # Not resolving (yet) is no reason to refuse a URL; sending re-checks it.
    check_public_url("https://unknown.tenant.test/hook")


def test_allow_list_entries():
    policy = OutboundPolicy(
        ["127.0.0.1:8080", "10.2.0.0/16", "triton.tenant.test", "[::1]:9000", "192.168.0.0/24:80"]
    )
    import ipaddress

    def admits(host, port, address):
        return policy.admits(host, port, ipaddress.ip_address(address))

    assert admits("127.0.0.1", 8080, "127.0.0.1")
    assert not admits("127.0.0.1", 8081, "127.0.0.1")
    assert admits("anything", 5432, "10.2.9.9")
    assert not admits("anything", 5432, "10.3.0.1")
    assert admits("triton.tenant.test", 443, "10.9.9.9")
    assert not admits("other.tenant.test", 443, "10.9.9.9")
    assert admits("::1", 9000, "::1") and not admits("::1", 9001, "::1")
    assert admits("x", 80, "192.168.0.7") and not admits("x", 81, "192.168.0.7")
    for bad in ("10.0.0.0/8:http", "not a host", "1.2.3.4:99999"):
        with pytest.raises(ImproperlyConfigured):
            OutboundPolicy([bad])


def test_short_line_keeps_one_printable_line():
    line = short_line(b"first\nsecond\r\n\x1b[31mred\x00\xe2\x80\xae" + b"z" * 500)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u202e" not in line
    assert line.startswith("first second [31mred") and len(line) <= 100


# -- input time: a clear 400 ------------------------------------------------------------------

INTERNAL_URLS = [
    "http://127.0.0.1:5432/",
    "http://localhost:8000/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://10.0.0.5/hook",
    "http://internal.tenant.test/hook",  # resolves to 10.0.0.5
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_team_webhooks_to_internal_addresses_are_400s(url, acme, dns):
    dns.answer("internal.tenant.test", ["10.0.0.5"])
    team, boss = acme
    response = api_client(boss).post(
        "/v1/teams/acme/webhooks", {"url": url, "events": ["build.succeeded"]}, format="json"
    )
    error = assert_error_shape(response, 400, "InputError")
    assert error["message"].startswith("url: ") and error["fields"] == {"url": ["not allowed"]}
    assert not Webhook.objects.filter(owner=team).exists()


def test_a_webhook_host_that_does_not_resolve_yet_is_accepted(acme, dns):
    _team, boss = acme
    response = api_client(boss).post(
        "/v1/teams/acme/webhooks",
        {"url": "https://soon.tenant.test/hook", "events": ["build.succeeded"]},
        format="json",
    )
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_budget_webhooks_to_internal_addresses_are_400s(url, acme, dns):
    dns.answer("internal.tenant.test", ["10.0.0.5"])
    _team, boss = acme
    response = api_client(boss).put(
        "/v1/teams/acme/budget", {"monthly_amount": "10", "webhook_url": url}, format="json"
    )
    error = assert_error_shape(response, 400, "InputError")
    assert error["message"].startswith("webhook_url: ")
    with pytest.raises(InputError):
        billing_services.budget_validate(monthly_amount="10", webhook_url=url)


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_invocation_webhooks_to_internal_addresses_are_400s(url, acme, dns):
    dns.answer("internal.tenant.test", ["10.0.0.5"])
    _team, boss = acme
    response = api_client(boss).post(
        f"/v1/algo/acme/anything?output=void&webhook={url}", {"x": 1}, format="json"
    )
    error = assert_error_shape(response, 400, "InputError")
    assert error["message"].startswith("webhook: ")


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_http_models_on_internal_addresses_are_400s(url, acme, dns):
    dns.answer("internal.tenant.test", ["10.0.0.5"])
    _team, boss = acme
    response = api_client(boss).post(
        "/v1/models/acme", {"name": "inside", "http": {"url": url}}, format="json"
    )
    error = assert_error_shape(response, 400, "InputError")
    assert error["message"].startswith("http.url: ")
    assert not Build.objects.exists()


# -- delivery time: checked again, pinned, refused before connecting --------------------------


def test_a_team_webhook_whose_name_now_resolves_to_loopback_reaches_nothing(acme, dns):
    team, boss = acme
    with Recorder() as internal:
        name = "hooks.tenant.test"
        dns.answer(name, ["198.51.100.7"], ["127.0.0.1"])  # public when given, loopback later
        response = api_client(boss).post(
            "/v1/teams/acme/webhooks",
            {"url": f"http://{name}:{internal.port}/hook", "events": ["build.succeeded"]},
            format="json",
        )
        assert response.status_code == 201, response.content
        hook = Webhook.objects.get(owner=team)
        delivery = WebhookDelivery.objects.create(webhook=hook, event="build.succeeded", payload={})
        with pytest.raises(DeliveryFailed, match="does not send to"):
            catalog_webhooks.webhook_deliver(delivery.pk)
        delivery.refresh_from_db()
        assert delivery.delivered_at is None and delivery.last_status is None
        assert "does not send to" in delivery.last_error
    assert internal.requests == []


def test_a_budget_alert_to_loopback_reaches_nothing(acme, dns, mailoutbox):
    team, boss = acme
    with Recorder() as internal:
        dns.answer("alerts.tenant.test", ["198.51.100.7"], ["127.0.0.1"])
        budget, _ = billing_services.budget_set(
            actor=boss,
            team=team,
            monthly_amount="10",
            thresholds=[50],
            webhook_url=f"http://alerts.tenant.test:{internal.port}/hook",
        )
        MonthlySpend.objects.create(team=team, project="", month=current_month(), total=6, calls=1)
        with pytest.raises(notifications.NotificationNotSent, match="does not send to"):
            notifications.budget_threshold_notify(
                budget_id=budget.pk, month=current_month(), threshold=50
            )
    assert internal.requests == []


def test_an_invocation_webhook_to_loopback_reaches_nothing_and_an_allowed_one_is_signed(
    db, dns, settings
):
    from gateway.models import Invocation
    from gateway.tasks import WebhookNotDelivered, deliver_invocation_webhook
    from tests.gateway.factories import InvocationFactory

    with Recorder() as internal, Recorder() as allowed:
        dns.answer("calls.tenant.test", ["127.0.0.1"])
        refused = InvocationFactory(webhook_url=f"http://calls.tenant.test:{internal.port}/")
        with pytest.raises(WebhookNotDelivered, match="does not send to"):
            deliver_invocation_webhook(str(refused.pk))
        assert Invocation.objects.get(pk=refused.pk).webhook_delivered_at is None

        allow_outbound(settings, allowed.url)
        delivered = InvocationFactory(webhook_url=f"{allowed.url}/done")
        deliver_invocation_webhook(str(delivered.pk))
        assert Invocation.objects.get(pk=delivered.pk).webhook_delivered_at is not None
    assert internal.requests == []
    (request,) = allowed.requests
    assert request["headers"]["X-Marketplace-Signature"] == sign(
        team_signing_secret(delivered.caller_team_id), request["body"]
    )
    assert json.loads(request["body"])["request_id"] == str(delivered.pk)


def test_an_http_model_whose_server_moved_to_loopback_fails_its_build_and_calls(
    acme, dns, transactional_db, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    _team, boss = acme
    with Recorder(answer=(200, {"Content-Type": "application/json"}, b'{"ok": true}')) as inside:
        dns.answer("models.tenant.test", ["198.51.100.7"], ["127.0.0.1"])
        url = f"http://models.tenant.test:{inside.port}/predict"
        response = api_client(boss).post(
            "/v1/models/acme",
            {"name": "mover", "http": {"url": url}, "sample_input": {"x": 1}},
            format="json",
        )
        assert response.status_code == 202, response.content
        build = Build.objects.get(pk=response.json()["build"]["id"])
        builder.execute_build(build.pk)
        build.refresh_from_db()
        assert build.status == "failed"
        assert "not allowed" in build.error and "does not send to" in build.error
        result = forward({"url": url, "protocol": "json"}, "json", {"x": 1}, 5)
        assert result.status == "failed" and "does not send to" in result.error["message"]
    assert inside.requests == []


def test_dns_rebinding_cannot_move_the_connection(settings, dns):
    """The name resolves to an allowed address (127.0.0.2, allow-listed) when checked, then to
    127.0.0.1: the request reaches the checked address, with one lookup, and its Host header
    and signature are the name's."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.2"]
    checked = Recorder("127.0.0.2")
    with checked, Recorder("127.0.0.1", checked.port) as internal:
        dns.answer("rebind.tenant.test", ["127.0.0.2"], ["127.0.0.1"])
        url = f"http://rebind.tenant.test:{checked.port}/hook"
        assert post_signed(url, {"a": 1}, secret="s", event="e", delivery_id="d") == 204
        assert dns.lookups == ["rebind.tenant.test"]
        # A second delivery looks the name up again and is refused: 127.0.0.1 is not allowed.
        with pytest.raises(DeliveryFailed, match="does not send to"):
            post_signed(url, {"a": 1}, secret="s", event="e", delivery_id="d")
    assert internal.requests == []
    (request,) = checked.requests
    assert request["headers"]["Host"] == f"rebind.tenant.test:{checked.port}"
    assert request["headers"]["X-Marketplace-Signature"] == sign("s", request["body"])


def test_a_refusal_does_not_connect(monkeypatch):
    connections = []
    real = socket.create_connection

    def create_connection(*args, **kwargs):
        connections.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://[fd00:ec2::254]/"):
        with pytest.raises(OutboundRefused):
            outbound_request("GET", url, timeout=1)
    assert connections == []


# -- redirects, bodies, sizes, time -----------------------------------------------------------


def test_a_redirect_to_loopback_is_not_followed(settings):
    with Recorder() as internal:
        moved = (302, {"Location": f"{internal.url}/admin"}, b"moved")
        with Recorder(answer=moved) as allowed:
            allow_outbound(settings, allowed.url)
            with pytest.raises(DeliveryFailed, match="HTTP 302: redirects are not followed"):
                post_signed(f"{allowed.url}/hook", {}, secret="s", event="e", delivery_id="d")
            result = forward({"url": allowed.url, "protocol": "json"}, "json", {}, 5)
            assert "redirects are not followed" in result.error["message"]
            assert len(allowed.requests) == 2
    assert internal.requests == []


def test_errors_carry_one_short_line_never_the_body(settings, transactional_db, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    body = json.dumps({"error": "broken\n" + SECRET_BODY}).encode()
    with Recorder(answer=(500, {"Content-Type": "application/json"}, body)) as upstream:
        allow_outbound(settings, upstream.url)
        with pytest.raises(DeliveryFailed) as failure:
            post_signed(f"{upstream.url}/hook", {}, secret="s", event="e", delivery_id="d")
        message = str(failure.value)
        assert message.startswith("HTTP 500: ") and failure.value.status == 500
        assert "\n" not in message and len(message) < 120 and SECRET_BODY not in message

        result = forward({"url": upstream.url, "protocol": "json"}, "json", {}, 5)
        message = result.error["message"]
        assert message.startswith("the inference server answered HTTP 500: broken internal-")
        assert "\n" not in message and len(message) < 150 and SECRET_BODY not in message

        owner = UserFactory(username="ops")
        response = api_client(owner).post(
            "/v1/models/ops",
            {"name": "leaky", "http": {"url": upstream.url}, "sample_input": {"x": 1}},
            format="json",
        )
        build = Build.objects.get(pk=response.json()["build"]["id"])
        builder.execute_build(build.pk)
        build.refresh_from_db()
        assert build.status == "failed"
        assert SECRET_BODY not in build.error and SECRET_BODY not in build.log
        assert "x" * 100 not in build.log and "x" * 100 not in build.error


def test_answers_are_bounded_in_size_and_time(settings):
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(1000):
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.05)

    with Recorder(answer=drip) as slow:
        allow_outbound(settings, slow.url)
        started = time.monotonic()
        with pytest.raises(OutboundTimeout):
            outbound_request("GET", slow.url, timeout=1)
        assert time.monotonic() - started < 3

    huge = (200, {}, b"x" * (2 * 1024 * 1024))
    with Recorder(answer=huge) as big:
        allow_outbound(settings, big.url)
        with pytest.raises(OutboundError, match="larger than"):
            outbound_request("GET", big.url, max_response_bytes=1024 * 1024)


def test_a_path_outside_ascii_is_sent_percent_encoded(settings):
    with Recorder() as receiver:
        allow_outbound(settings, receiver.url)
        assert post_signed(f"{receiver.url}/hé?q=ü", {}, secret="s", event="e", delivery_id="d")
    assert receiver.requests[0]["path"] == "/h%C3%A9?q=%C3%BC"


def test_a_closed_allowed_port_says_it_could_not_connect(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    allow_outbound(settings, f"http://127.0.0.1:{port}")
    with pytest.raises(OutboundError, match="could not connect") as failure:
        outbound_request("GET", f"http://127.0.0.1:{port}/")
    assert not isinstance(failure.value, OutboundRefused)


# -- the allow-list ---------------------------------------------------------------------------


def test_the_allow_list_lets_a_team_webhook_through_signed(acme, settings):
    team, boss = acme
    with Recorder() as receiver:
        allow_outbound(settings, receiver.url)
        response = api_client(boss).post(
            "/v1/teams/acme/webhooks",
            {"url": f"{receiver.url}/hook", "events": ["build.succeeded"]},
            format="json",
        )
        assert response.status_code == 201, response.content
        secret = response.json()["secret"]
        hook = Webhook.objects.get(owner=team)
        delivery = WebhookDelivery.objects.create(
            webhook=hook, event="build.succeeded", payload={"event": "build.succeeded", "n": 1}
        )
        assert catalog_webhooks.webhook_deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None and delivery.last_status == 204
    (request,) = receiver.requests
    assert request["path"] == "/hook"
    assert request["headers"]["Host"] == f"127.0.0.1:{receiver.port}"
    assert request["headers"]["X-Marketplace-Signature"] == sign(secret, request["body"])
    assert request["headers"]["X-Marketplace-Event"] == "build.succeeded"
    assert request["headers"]["X-Marketplace-Delivery"] == str(delivery.pk)
    assert json.loads(request["body"]) == {"event": "build.succeeded", "n": 1}


def test_the_allow_list_is_per_port(settings):
    with Recorder() as allowed, Recorder() as other:
        allow_outbound(settings, allowed.url)
        assert post_signed(allowed.url, {}, secret="s", event="e", delivery_id="d") == 204
        with pytest.raises(DeliveryFailed, match="does not send to"):
            post_signed(other.url, {}, secret="s", event="e", delivery_id="d")
    assert len(allowed.requests) == 1 and other.requests == []


def test_a_budget_alert_to_an_allowed_server_is_signed(acme, settings, mailoutbox):
    team, boss = acme
    with Recorder() as receiver:
        allow_outbound(settings, receiver.url)
        budget, _ = billing_services.budget_set(
            actor=boss,
            team=team,
            monthly_amount="10",
            thresholds=[50],
            webhook_url=f"{receiver.url}/budget",
        )
        MonthlySpend.objects.create(team=team, project="", month=current_month(), total=6, calls=1)
        assert notifications.budget_threshold_notify(
            budget_id=budget.pk, month=current_month(), threshold=50
        )
    (request,) = receiver.requests
    assert request["headers"]["X-Marketplace-Signature"] == sign(
        team_signing_secret(team.pk), request["body"]
    )
    assert json.loads(request["body"])["event"] == "budget.threshold"


# -- TLS: the certificate is checked against the name, on the pinned address ------------------


def _certificate(tmp_path, name: str):
    """A CA and a certificate for `name` signed by it (trustme), as files."""
    authority = trustme.CA()
    leaf = authority.issue_cert(name)
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key"
    authority.cert_pem.write_to_path(str(ca))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return ca, cert, key


@pytest.mark.parametrize("certified", ["hooks.tenant.test", "someone-else.tenant.test"])
def test_https_checks_the_certificate_against_the_name(
    certified, tmp_path, settings, dns, monkeypatch
):
    ca, cert, key = _certificate(tmp_path, certified)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # as an operator trusts a private CA
    server_names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    receiver = Recorder()
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    with receiver:
        dns.answer("hooks.tenant.test", ["127.0.0.1"])
        settings.OUTBOUND_ALLOWED_NETWORKS = ["hooks.tenant.test"]
        url = f"https://hooks.tenant.test:{receiver.port}/hook"
        if certified == "hooks.tenant.test":
            assert post_signed(url, {}, secret="s", event="e", delivery_id="d") == 204
            assert receiver.requests[0]["headers"]["Host"] == f"hooks.tenant.test:{receiver.port}"
        else:
            with pytest.raises(DeliveryFailed, match=r"TLS with hooks\.tenant\.test failed"):
                post_signed(url, {}, secret="s", event="e", delivery_id="d")
            assert receiver.requests == []
    assert server_names == ["hooks.tenant.test"]
