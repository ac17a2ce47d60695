"""Secrets the platform must use again but never show again (an identity provider's refresh
tokens), sealed at rest with Fernet (authenticated encryption, from `cryptography`).

The key is derived from SECRET_KEY for each purpose, so a leaked database alone opens
nothing; SECRET_KEY_FALLBACKS keep what was sealed under an earlier key readable, and a value
is sealed again under the current key whenever it is next written."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SealBroken(ValueError):
    """A sealed value that no current or fallback key opens, or that was tampered with."""


def _fernet(secret: str, purpose: str) -> Fernet:
    digest = hashlib.sha256(f"marketplace.sealing:{purpose}:{secret}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys(purpose: str) -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(secret, purpose) for secret in secrets])


def seal(value: str, *, purpose: str) -> str:
    return _keys(purpose).encrypt(value.encode()).decode()


def unseal(sealed: str, *, purpose: str) -> str:
    try:
        return _keys(purpose).decrypt(sealed.encode()).decode()
    except InvalidToken:
        raise SealBroken(f"a sealed {purpose} cannot be opened with the current keys") from None
