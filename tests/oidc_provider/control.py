"""The tests' control API: what an identity provider's administrator does in its console."""

import json
import time
from functools import wraps
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.http import HttpResponseForbidden, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from oidc_provider.models import Client, ResponseType, RSAKey, Token
from oidc_provider.views import TokenView


def _controlled(view):
    @csrf_exempt
    @require_POST
    @wraps(view)
    def wrapper(request):
        if request.headers.get("X-Control-Token") != settings.CONTROL_TOKEN:
            return HttpResponseForbidden()
        return view(request, json.loads(request.body or b"{}"))

    return wrapper


@_controlled
def user_put(request, body):
    """Create or change a user; `active: false` makes them leave: disabled, their tokens
    revoked (so a refresh is refused)."""
    user, _ = User.objects.get_or_create(username=body["username"])
    if "password" in body:
        user.set_password(body["password"])
    user.email = body.get("email", user.email)
    user.is_active = body.get("active", True)
    user.save()
    if "groups" in body:
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in body["groups"]])
    if not user.is_active:
        Token.objects.filter(user=user).delete()
    return JsonResponse({"sub": str(user.pk)})


@_controlled
def client_put(request, body):
    client, _ = Client.objects.update_or_create(
        client_id=body["client_id"],
        defaults={
            "name": body.get("name", "marketplace"),
            "client_type": "confidential",
            "client_secret": body["client_secret"],
            "_redirect_uris": "\n".join(body["redirect_uris"]),
            "require_consent": False,
            "_scope": "openid email profile groups",
        },
    )
    code, _ = ResponseType.objects.get_or_create(value="code")
    client.response_types.set([code])
    return JsonResponse({"client_id": client.client_id})


@_controlled
def rotate_key(request, body):
    """A new signing key replaces every old one (JWKS then lists only the new one)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    RSAKey.objects.all().delete()
    key = RSAKey.objects.create(key=_pem(private))
    return JsonResponse({"kid": key.kid})


def _mode_file() -> Path:
    return Path(settings.DATABASES["default"]["NAME"] + ".token-mode")


@_controlled
def token_mode(request, body):
    """What the next token answer does wrong (one answer only): tamper, expired, unknown_kid,
    wrong_issuer, wrong_audience, wrong_nonce; or "" for nothing."""
    _mode_file().write_text(body.get("mode", ""))
    return JsonResponse({"mode": body.get("mode", "")})


def _pem(private) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _spoiled(id_token: str, mode: str) -> str:
    if mode == "tamper":
        header, payload, signature = id_token.split(".")
        claims = json.loads(jwt.utils.base64url_decode(payload))
        claims["sub"] = "someone-else"
        forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
        return f"{header}.{forged}.{signature}"
    claims = jwt.decode(id_token, options={"verify_signature": False})
    key = RSAKey.objects.first()
    pem, kid = key.key, key.kid
    now = int(time.time())
    if mode == "expired":
        claims.update(iat=now - 7200, exp=now - 3600, auth_time=now - 7200)
    elif mode == "unknown_kid":
        pem = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        kid = "not-published"
    elif mode == "wrong_issuer":
        claims["iss"] = "http://issuer.invalid/openid"
    elif mode == "wrong_audience":
        claims["aud"] = "another-client"
    elif mode == "wrong_nonce":
        claims["nonce"] = "not-the-one-you-sent"
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": kid})


@csrf_exempt
def token(request):
    """The provider's token endpoint, which can be told to spoil its next ID token."""
    response = TokenView.as_view()(request)
    mode_file = _mode_file()
    mode = mode_file.read_text() if mode_file.exists() else ""
    if not mode or response.status_code != 200:
        return response
    mode_file.write_text("")
    body = json.loads(response.content)
    if "id_token" in body:
        body["id_token"] = _spoiled(body["id_token"], mode)
    return JsonResponse(body)
