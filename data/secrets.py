"""Connector secrets, encrypted at rest with Fernet (the `cryptography` package: AES-128-CBC
with an HMAC-SHA256, so a changed ciphertext is refused, never decrypted to garbage).

The keys come from DATA_CONNECTOR_SECRET_KEYS (comma-separated Fernet keys, each made by
`Fernet.generate_key()`): the first encrypts, every one decrypts, so a key is rotated by
putting a new one first, running `manage.py rotate_connector_secrets`, then dropping the
old one. Unset, the key is derived from SECRET_KEY with HKDF (its own `info`, so it is
not SECRET_KEY itself nor any other key derived from it), and keys derived from
SECRET_KEY_FALLBACKS still decrypt, as marketplace/core/sealing.py does for its secrets."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_INFO = b"marketplace data connector secrets v1"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt with any configured key."""


def key_from_secret_key(secret_key: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode("utf-8")
    )
    return base64.urlsafe_b64encode(derived)


def _cipher() -> MultiFernet:
    configured = settings.DATA_CONNECTOR_SECRET_KEYS
    if isinstance(configured, str):
        configured = configured.split(",")
    keys = [key.strip() for key in configured if key.strip()]
    if not keys:
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        keys = [key_from_secret_key(secret).decode("ascii") for secret in secrets]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "DATA_CONNECTOR_SECRET_KEYS: every key must be 32 url-safe base64-encoded bytes "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from None


def encrypt_secret(secret: str) -> str:
    return _cipher().encrypt(secret.encode("utf-8")).decode("ascii")


def decrypt_secret(token: str) -> str:
    try:
        return _cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable("the connector's secret does not decrypt") from None


def reencrypt_secret(token: str) -> str:
    """The same secret under the first key (MultiFernet.rotate)."""
    try:
        return _cipher().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SecretUnreadable("the connector's secret does not decrypt") from None


def secret_hint(secret: str) -> str:
    return "…" + secret[-4:] if len(secret) >= 12 else "…"
