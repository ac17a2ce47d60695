"""Company sign-on against a real OpenID Connect provider: tests/oidc_provider (django-oidc-
provider in a project of its own), started once per test process by gunicorn on loopback.

Fixtures:
  oidc_server   the provider process, with a signing key and the platform registered as a
                confidential client
  provider      oidc_server, with the platform's OIDC_* settings pointing at it
  sign_on       sign_on(client, "ann", next="/teams/") runs the whole code flow: the
                platform's start view (Django test client), the provider's log-in form and
                authorization (requests), and back to the platform's callback; returns the
                platform's answer to the callback
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.live_platform import free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENT_ID = "marketplace"
CLIENT_SECRET = "client-secret-for-tests"
CONTROL_TOKEN = "control-token-for-tests"
PASSWORD = "acme-password-1"
TEST_CALLBACK = "http://testserver/accounts/sso/callback/"


@dataclass
class OidcServer:
    base: str
    process: subprocess.Popen
    log: Path

    @property
    def issuer(self) -> str:
        return f"{self.base}/openid"

    def control(self, what: str, **body) -> dict:
        response = requests.post(
            f"{self.base}/control/{what}",
            json=body,
            headers={"X-Control-Token": CONTROL_TOKEN},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def person(self, username: str, *, groups=(), email="", active=True) -> str:
        """Create or change a person at the provider; returns their subject."""
        return self.control(
            "users",
            username=username,
            password=PASSWORD,
            email=email or f"{username}@acme.test",
            groups=list(groups),
            active=active,
        )["sub"]

    def register(self, *redirect_uris: str) -> None:
        self.control(
            "clients",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            redirect_uris=[TEST_CALLBACK, *redirect_uris],
        )

    def spoil_next_token(self, mode: str) -> None:
        self.control("token-mode", mode=mode)


def _provider_env(database: Path, base: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
            "PYTHONPATH": str(ROOT),
            "OIDC_TEST_DATABASE": str(database),
            "OIDC_TEST_SITE_URL": base,
            "OIDC_TEST_CONTROL_TOKEN": CONTROL_TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def oidc_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("oidc-provider")
    base = f"http://127.0.0.1:{free_port()}"
    env = _provider_env(directory / "provider.sqlite3", base)
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v", "0"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=900,
    )
    log = directory / "provider.log"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "tests.oidc_provider.wsgi:application",
            "--bind",
            urlsplit(base).netloc,
            "--workers",
            "1",
            "--threads",
            "8",
            "--timeout",
            "900",
        ],
        env=env,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = OidcServer(base, process, log)
    try:
        _wait_until_serving(server)
        server.control("rotate-key")
        server.register()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_serving(server: OidcServer, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log.read_text()
        try:
            if requests.get(f"{server.issuer}/.well-known/openid-configuration", timeout=30).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the OpenID provider did not start\n{server.log.read_text()}")


@pytest.fixture
def provider(oidc_server, settings):
    settings.OIDC_ISSUER = oidc_server.issuer
    settings.OIDC_CLIENT_ID = CLIENT_ID
    settings.OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_PROVIDER_NAME = "Acme"
    oidc_server.spoil_next_token("")
    return oidc_server


def provider_login(authorize_url: str, username: str, password: str = PASSWORD) -> str:
    """Sign in at the provider as a browser would, from its authorization URL; returns the
    URL it sends the browser back to (the platform's callback, with code and state)."""
    browser = requests.Session()
    response = browser.get(authorize_url, allow_redirects=False, timeout=60)
    while response.status_code == 302 and "/login/" in response.headers["Location"]:
        login_url = urljoin(authorize_url, response.headers["Location"])
        browser.get(login_url, timeout=60)
        response = browser.post(
            login_url,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
                "next": requests.utils.unquote(login_url.split("next=", 1)[1]),
            },
            headers={"Referer": login_url},
            allow_redirects=False,
            timeout=60,
        )
        response = browser.get(
            urljoin(login_url, response.headers["Location"]), allow_redirects=False, timeout=60
        )
    assert response.status_code == 302, response.text[:2000]
    return response.headers["Location"]


def callback_path(url: str) -> str:
    parts = urlsplit(url)
    assert parts.path == "/accounts/sso/callback/", url
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def sign_on(provider):
    def sign_on_(client, username: str, *, next: str = ""):
        start = client.get("/accounts/sso/start/" + (f"?next={next}" if next else ""))
        assert start.status_code == 302, start.content[:2000]
        return client.get(callback_path(provider_login(start["Location"], username)))

    return sign_on_
