"""Connector secrets, sealed at rest (marketplace/core/sealing.py) with the keys of
DATA_CONNECTOR_SECRET_KEYS: the first seals, every one opens, so a key is rotated by putting a
new one first, running `manage.py rotate_connector_secrets`, then dropping the old one.
Unset, the key is derived from SECRET_KEY (and its fallbacks) for this purpose alone."""

from __future__ import annotations

from django.conf import settings

from marketplace.core.sealing import SealBroken, derived_key, reseal, seal, unseal

PURPOSE = "data connector secrets v1"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt with any configured key."""


def key_from_secret_key(secret_key: str) -> bytes:
    return derived_key(secret_key, purpose=PURPOSE)


def encrypt_secret(secret: str) -> str:
    return seal(secret, purpose=PURPOSE, keys=settings.DATA_CONNECTOR_SECRET_KEYS)


def decrypt_secret(token: str) -> str:
    try:
        return unseal(token, purpose=PURPOSE, keys=settings.DATA_CONNECTOR_SECRET_KEYS)
    except SealBroken:
        raise SecretUnreadable("the connector's secret does not decrypt") from None


def reencrypt_secret(token: str) -> str:
    """The same secret under the first key."""
    try:
        return reseal(token, purpose=PURPOSE, keys=settings.DATA_CONNECTOR_SECRET_KEYS)
    except SealBroken:
        raise SecretUnreadable("the connector's secret does not decrypt") from None


def secret_hint(secret: str) -> str:
    return "…" + secret[-4:] if len(secret) >= 12 else "…"
