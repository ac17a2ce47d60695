"""Secrets the platform must use again but never show again (an identity provider's refresh
tokens, a data connector's secret), sealed at rest with Fernet (`cryptography`: AES-128-CBC
with an HMAC-SHA256, so a changed value is refused, never opened to garbage).

Each purpose has its own keys. Given explicitly (`keys`: Fernet keys, each made by
`Fernet.generate_key()`), the first seals and every one opens, so a key is rotated by putting
a new one first, resealing (`reseal`), then dropping the old one. Otherwise the key is derived
from SECRET_KEY with HKDF (the purpose as its `info`, so it is neither SECRET_KEY nor any
other purpose's key), and keys derived from SECRET_KEY_FALLBACKS still open."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SealBroken(ValueError):
    """A sealed value that no current or fallback key opens, or that was tampered with."""


def derived_key(secret_key: str, *, purpose: str) -> bytes:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"marketplace {purpose}".encode()
    ).derive(secret_key.encode("utf-8"))
    return base64.urlsafe_b64encode(derived)


def _keys(purpose: str, keys: Sequence[str] | str | None) -> MultiFernet:
    if isinstance(keys, str):
        keys = keys.split(",")
    given = [key.strip() for key in keys or () if key.strip()]
    if not given:
        secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        given = [derived_key(secret, purpose=purpose).decode("ascii") for secret in secrets]
    try:
        return MultiFernet([Fernet(key) for key in given])
    except ValueError:
        raise ImproperlyConfigured(
            f"the keys for {purpose}: every key must be 32 url-safe base64-encoded bytes "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from None


def seal(value: str, *, purpose: str, keys: Sequence[str] | str | None = None) -> str:
    return _keys(purpose, keys).encrypt(value.encode("utf-8")).decode("ascii")


def unseal(sealed: str, *, purpose: str, keys: Sequence[str] | str | None = None) -> str:
    try:
        return _keys(purpose, keys).decrypt(sealed.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SealBroken(f"a sealed {purpose} cannot be opened with the current keys") from None


def reseal(sealed: str, *, purpose: str, keys: Sequence[str] | str | None = None) -> str:
    """The same value sealed under the first key (MultiFernet.rotate)."""
    try:
        return _keys(purpose, keys).rotate(sealed.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SealBroken(f"a sealed {purpose} cannot be opened with the current keys") from None
