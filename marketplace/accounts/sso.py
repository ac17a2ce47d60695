"""Company sign-on, the protocol side: OpenID Connect's authorization code flow with PKCE
against the provider named by OIDC_ISSUER, through Authlib.

Authlib reads the provider's discovery document, keeps `state`, `nonce` and the PKCE verifier
in the session (each used once), exchanges the code, and checks the ID token's signature
against the provider's JWKS (fetched again when a token names a key it does not know: key
rotation), its issuer, audience, expiry and nonce. This module adds what Authlib leaves to
its caller: the discovery document must name the configured issuer, and every failure
becomes a `SignOnError` with a message for the person signing in and a reason for the audit
trail. Accounts and memberships are provisioning.py's."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.django_client import OAuth
from django.conf import settings
from joserfc.errors import JoseError

# The claims in an ID token or userinfo answer that the platform reads.
SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256"]


class SignOnError(Exception):
    """A sign-in or re-check that failed: `message` is for the person, `reason` for the
    trail; `status` is the page's HTTP status."""

    def __init__(self, message: str, *, reason: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str = ""
    username_hint: str = ""
    name: str = ""
    groups: tuple[str, ...] = ()
    refresh_token: str = field(default="", repr=False)


def enabled() -> bool:
    return bool(settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID)


def provider_name() -> str:
    return settings.OIDC_PROVIDER_NAME


_lock = threading.Lock()
_client_for: dict[tuple, object] = {}


def _client():
    """The Authlib client for the current settings (one per process; a settings change, as
    in tests, makes a new one). It caches the discovery document and JWKS it has read."""
    config = (
        settings.OIDC_ISSUER,
        settings.OIDC_CLIENT_ID,
        settings.OIDC_CLIENT_SECRET,
        settings.OIDC_SCOPES,
        settings.OIDC_HTTP_TIMEOUT_SECONDS,
    )
    with _lock:
        client = _client_for.get(config)
        if client is None:
            oauth = OAuth()
            client = oauth.register(
                name="company",
                client_id=settings.OIDC_CLIENT_ID,
                client_secret=settings.OIDC_CLIENT_SECRET,
                server_metadata_url=f"{settings.OIDC_ISSUER}/.well-known/openid-configuration",
                client_kwargs={
                    "scope": settings.OIDC_SCOPES,
                    "code_challenge_method": "S256",
                    "timeout": settings.OIDC_HTTP_TIMEOUT_SECONDS,
                },
            )
            _client_for.clear()
            _client_for[config] = client
        return client


def _unreachable() -> SignOnError:
    return SignOnError(
        f"The sign-on service of {provider_name()} cannot be reached right now. Try again in "
        "a few minutes.",
        reason="provider_unreachable",
        status=503,
    )


def _metadata(client) -> dict:
    try:
        metadata = client.load_server_metadata()
    except (requests.RequestException, ValueError):
        raise _unreachable() from None
    if str(metadata.get("issuer", "")).rstrip("/") != settings.OIDC_ISSUER:
        client.server_metadata = {}  # read it again next time: it may be fixed
        raise SignOnError(
            f"The sign-on service of {provider_name()} is misconfigured (its discovery "
            "document names another issuer). Tell your administrator.",
            reason="wrong_issuer",
            status=502,
        )
    # Only asymmetric signatures: an HS256 token would be "signed" with the client secret.
    metadata["id_token_signing_alg_values_supported"] = [
        alg
        for alg in metadata.get("id_token_signing_alg_values_supported", ["RS256"])
        if alg in SIGNING_ALGORITHMS
    ]
    return metadata


def begin(request, redirect_uri: str):
    """The redirect to the provider's authorization endpoint; `state`, `nonce` and the PKCE
    code verifier are kept in the session for `complete`."""
    client = _client()
    _metadata(client)
    try:
        return client.authorize_redirect(request, redirect_uri)
    except requests.RequestException:
        raise _unreachable() from None


def complete(request) -> Identity:
    """The identity the provider vouches for in this callback request, or SignOnError."""
    client = _client()
    _metadata(client)
    try:
        token = client.authorize_access_token(request)
    except MismatchingStateError:
        raise SignOnError(
            "This sign-in link was already used, or it expired. Start the sign-in again.",
            reason="state_mismatch",
        ) from None
    except OAuthError as error:
        raise SignOnError(
            f"{provider_name()} did not sign you in: {error.description or error.error}.",
            reason=f"provider_refused:{error.error}"[:64],
        ) from None
    except JoseError as error:
        raise SignOnError(
            f"The sign-in from {provider_name()} could not be verified ({error.error}). Start "
            "the sign-in again; if it keeps failing, tell your administrator.",
            reason=f"token_invalid:{error.error}"[:64],
        ) from None
    except requests.RequestException:
        raise _unreachable() from None
    claims = token.get("userinfo")
    if not claims:
        raise SignOnError(
            f"{provider_name()} answered without an ID token.", reason="token_missing"
        )
    return _identity(claims, token.get("refresh_token", ""))


def _identity(claims, refresh_token: str) -> Identity:
    groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    return Identity(
        issuer=settings.OIDC_ISSUER,
        subject=str(claims["sub"]),
        email=str(claims.get("email") or ""),
        username_hint=str(claims.get("preferred_username") or claims.get("email") or ""),
        name=str(claims.get("name") or ""),
        groups=tuple(sorted({str(group) for group in groups if isinstance(group, str | int)})),
        refresh_token=refresh_token or "",
    )


class RefreshRefused(Exception):
    """The provider refused a refresh: the grant is revoked (the person left, or was signed
    out by the provider)."""


def recheck(subject: str, refresh_token: str) -> Identity:
    """Who the provider says `subject` is now: a refresh, then its userinfo. RefreshRefused
    when the provider refuses; SignOnError when it cannot be asked (down) or answers wrong."""
    client = _client()
    metadata = _metadata(client)
    try:
        token = client.fetch_access_token(grant_type="refresh_token", refresh_token=refresh_token)
    except OAuthError as error:
        raise RefreshRefused(error.error or "refused") from None
    except requests.RequestException:
        raise _unreachable() from None
    try:
        response = requests.get(
            metadata["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=settings.OIDC_HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException:
        raise _unreachable() from None
    if response.status_code in (401, 403):
        raise RefreshRefused(f"userinfo {response.status_code}")
    if response.status_code != 200:
        raise _unreachable()
    claims = response.json()
    if str(claims.get("sub")) != subject:
        raise SignOnError("the provider's userinfo names another subject", reason="sub_mismatch")
    return _identity(claims, token.get("refresh_token") or refresh_token)
