"""Writes of connectors: creating, changing and deleting a namespace's connectors (its
owners and admins), and writing through one (files, directories, deletes). Every change
is audited without the secret (only its hint); the secret is encrypted before it is kept
(data/secrets.py) and never returned."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.accounts import policies
from marketplace.accounts.models import Team
from marketplace.accounts.principals import Principal
from marketplace.audit.models import Action
from marketplace.audit.services import audit_record
from marketplace.core.errors import (
    AuthorizationError,
    ConflictError,
    InputError,
    NotFoundError,
    RequestTooLargeError,
)
from marketplace.core.outbound import OutboundRefused

from .connector_bucket import bucket_errors
from .connector_selectors import check_endpoint, effective_endpoint, open_bucket
from .models import Connector
from .paths import CONNECTOR_NAME, ConnectorPath, bucket_prefix, entry_name, quoted
from .permissions import DataActor
from .secrets import encrypt_secret, secret_hint
from .services import LimitedReader

REGION = re.compile(r"^[a-z0-9][a-z0-9-]{1,30}$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
ACCESS_KEY_ID = re.compile(r"^[A-Za-z0-9_+/=.-]{1,128}$")
SHOWN_FIELDS = ("name", "endpoint_url", "region", "bucket", "prefix", "access_key_id")


@dataclass(frozen=True)
class ConnectorInput:
    name: str
    bucket: str
    access_key_id: str
    endpoint_url: str = ""
    region: str = "us-east-1"
    prefix: str = ""


def _fail(field: str, message: str):
    raise InputError(f"{field}: {message}", fields={field: [message]})


def _clean(given: ConnectorInput) -> dict:
    name = given.name.strip().lower()
    if not CONNECTOR_NAME.match(name) or ".." in name:
        _fail("name", "3 to 63 lowercase letters, digits, '.' or '-', as a bucket name")
    bucket = given.bucket.strip()
    if not BUCKET.match(bucket) or ".." in bucket:
        _fail("bucket", "not a bucket name (3 to 63 lowercase letters, digits, '.' or '-')")
    region = given.region.strip() or "us-east-1"
    if not REGION.match(region):
        _fail("region", "not a region name, e.g. us-east-1")
    access_key_id = given.access_key_id.strip()
    if not ACCESS_KEY_ID.match(access_key_id):
        _fail("access_key_id", "not an access key id")
    endpoint_url = given.endpoint_url.strip().rstrip("/")
    try:
        prefix = bucket_prefix(given.prefix)
    except InputError as error:
        _fail("prefix", error.message)
    values = {
        "name": name,
        "bucket": bucket,
        "region": region,
        "access_key_id": access_key_id,
        "endpoint_url": endpoint_url,
        "prefix": prefix,
    }
    probe = Connector(endpoint_url=endpoint_url, region=region)
    try:
        check_endpoint(effective_endpoint(probe))
    except OutboundRefused as refusal:
        _fail("endpoint_url", str(refusal))
    return values


def _clean_secret(secret: str) -> str:
    secret = secret.strip()
    if not 1 <= len(secret) <= 256 or not secret.isprintable():
        _fail("secret", "give the secret access key (printable, at most 256 characters)")
    return secret


def _require_admin(principal: Principal, team: Team) -> None:
    principal.require_acts_for(team)
    if principal.user is None or not policies.can_administer(principal.user, team):
        raise AuthorizationError(f"only {team.slug}'s owners and admins manage its connectors")


def _shown(connector: Connector) -> dict:
    return {field: getattr(connector, field) for field in SHOWN_FIELDS} | {
        "secret_hint": connector.secret_hint
    }


def _audit(action: str, principal: Principal, connector: Connector, **changes) -> None:
    audit_record(
        action=action,
        team=connector.team,
        principal=principal,
        target_type="connector",
        target_id=str(connector.pk),
        target_repr=f"s3://{connector.name}",
        **changes,
    )


@transaction.atomic
def connector_create(
    *, principal: Principal, team: Team, given: ConnectorInput, secret: str
) -> Connector:
    _require_admin(principal, team)
    values = _clean(given)
    secret = _clean_secret(secret)
    if Connector.objects.filter(team=team, name=values["name"]).exists():
        _fail("name", f"{team.slug} already has a connector s3://{values['name']}")
    try:
        with transaction.atomic():
            connector = Connector.objects.create(
                team=team,
                secret_encrypted=encrypt_secret(secret),
                secret_hint=secret_hint(secret),
                created_by=principal.user,
                **values,
            )
    except IntegrityError:
        raise ConflictError(f"{team.slug} already has a connector s3://{values['name']}") from None
    _audit(Action.CONNECTOR_CREATED, principal, connector, after=_shown(connector))
    return connector


@transaction.atomic
def connector_update(
    *, principal: Principal, connector: Connector, given: ConnectorInput, secret: str = ""
) -> Connector:
    """Change a connector; an empty `secret` keeps the one it has."""
    _require_admin(principal, connector.team)
    connector = Connector.objects.select_for_update().select_related("team").get(pk=connector.pk)
    values = _clean(given)
    if values["name"] != connector.name and (
        Connector.objects.filter(team=connector.team, name=values["name"]).exists()
    ):
        _fail("name", f"{connector.team.slug} already has a connector s3://{values['name']}")
    before = _shown(connector)
    for field, value in values.items():
        setattr(connector, field, value)
    if secret.strip():
        secret = _clean_secret(secret)
        connector.secret_encrypted = encrypt_secret(secret)
        connector.secret_hint = secret_hint(secret)
    connector.updated_at = timezone.now()
    connector.save()
    after = _shown(connector) | {"secret_replaced": bool(secret.strip())}
    _audit(Action.CONNECTOR_CHANGED, principal, connector, before=before, after=after)
    return connector


@transaction.atomic
def connector_delete(*, principal: Principal, connector: Connector) -> None:
    _require_admin(principal, connector.team)
    _audit(Action.CONNECTOR_DELETED, principal, connector, before=_shown(connector))
    connector.delete()


# -- writing through a connector -------------------------------------------------------------


def connector_file_write(
    *, actor: DataActor, path: ConnectorPath, source: BinaryIO, declared_size: int | None
) -> None:
    """Stream `source` to the object `path` names, at most DATA_MAX_FILE_BYTES (413). A
    connected bucket is the team's own: the hosted-data quota does not count it."""
    if not path.parts:
        raise InputError("name a file inside the bucket: s3://CONNECTOR/path/to/file")
    max_bytes = settings.DATA_MAX_FILE_BYTES

    def too_large():
        return RequestTooLargeError(f"a file is at most {max_bytes:,} bytes")

    if declared_size is not None and declared_size > max_bytes:
        raise too_large()
    bucket = open_bucket(actor, path, operation="write", write=True)
    reader = LimitedReader(source, max_bytes, too_large)
    with bucket_errors(path.uri()):
        if bucket.head(path.relative) is None and bucket.is_directory(path.relative):
            raise ConflictError(f"{quoted(path.uri())} is a directory")
        bucket.save(path.relative, reader)
    if declared_size is not None and reader.count != declared_size:
        with contextlib.suppress(Exception):
            bucket.delete_file(path.relative)
        raise InputError(f"the body ended after {reader.count:,} of its {declared_size:,} bytes")


def connector_directory_create(*, actor: DataActor, path: ConnectorPath, name: str) -> None:
    target = path.child(entry_name(name))
    bucket = open_bucket(actor, target, operation="create directory", write=True)
    with bucket_errors(target.uri()):
        if bucket.head(target.relative) is not None or bucket.is_directory(target.relative):
            raise ConflictError(f"{quoted(target.uri())} already exists")
        bucket.make_directory(target.relative)


def connector_object_delete(*, actor: DataActor, path: ConnectorPath, force: bool) -> int:
    """Delete the file, or the directory (with `force` when not empty), `path` names.
    Returns how many files went."""
    if not path.parts:
        raise InputError("a connected bucket itself is not deleted through the data API")
    bucket = open_bucket(actor, path, operation="delete", write=True)
    with bucket_errors(path.uri()):
        if bucket.head(path.relative) is not None:
            bucket.delete_file(path.relative)
            return 1
        if not bucket.is_directory(path.relative):
            raise NotFoundError(f"no such file or directory {quoted(path.uri())}")
        files = [key for key in bucket.keys_below(path.relative) if not key.endswith("/")]
        if files and not force:
            raise ConflictError(f"{quoted(path.uri())} is not empty: delete it with force=true")
        return bucket.delete_tree(path.relative)
