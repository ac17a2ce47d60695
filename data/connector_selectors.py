"""Finding a connector for a caller, and opening its bucket for one request.

Who may use a connector (docs/api.md, Connectors): `s3://NAME` names a connector of the
caller's own namespace, the one `data://.my` means (a team key's team; a personal key's or a
signed-in user's personal namespace). Its members read through it; those who may write the
namespace's hosted data (owner, admin, member, or a team key) write through it; a key needs
`data:read` / `data:write` as for hosted data (data/api.py). Another namespace's connectors
do not exist for the caller: 404, whatever their name.

Every opening decrypts the secret, so every opening is audited (`connector.used`), and the
endpoint is checked against the outbound policy each time, not only when it was saved."""

from __future__ import annotations

import urllib.parse

from marketplace.accounts.models import Team
from marketplace.audit.models import Action
from marketplace.audit.services import audit_record
from marketplace.core.errors import ApiError, AuthorizationError, InputError, NotFoundError
from marketplace.core.outbound import OutboundError, OutboundPolicy, OutboundRefused, OutboundTarget

from .connector_bucket import ConnectorBucket, s3_client
from .models import Connector
from .paths import ConnectorPath, quoted
from .permissions import DataActor, can_write
from .secrets import SecretUnreadable, decrypt_secret


class ConnectorRefusedError(ApiError):
    status_code = 403
    error_type = "ConnectorRefusedError"
    default_message = "The platform does not connect to this endpoint"


def effective_endpoint(connector: Connector) -> str:
    return connector.endpoint_url or f"https://s3.{connector.region}.amazonaws.com"


def check_endpoint(url: str) -> None:
    """Raise OutboundRefused when the endpoint is not one the platform sends to: http(s),
    no credentials, path or query, and a host that is not (and does not resolve to) a
    loopback, private, link-local or metadata address unless OUTBOUND_ALLOWED_NETWORKS
    allows it."""
    target = OutboundTarget.from_url(url)
    parts = urllib.parse.urlsplit(url)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise OutboundRefused("an endpoint is scheme://host[:port], without a path or query")
    try:
        OutboundPolicy.from_settings().resolve(target.hostname, target.port)
    except OutboundRefused:
        raise
    except OutboundError as error:
        raise OutboundRefused(str(error)) from None


def team_connectors(team: Team):
    return Connector.objects.filter(team=team).select_related("team").order_by("name")


def connector_of(actor: DataActor, path: ConnectorPath) -> Connector:
    team = actor.own_namespace
    connector = None
    if team is not None and actor.principal.is_member(team):
        connector = team_connectors(team).filter(name=path.connector).first()
    if connector is None:
        where = f"{team.slug}'s connectors" if team is not None else "your namespace"
        raise NotFoundError(f"no such connector s3://{quoted(path.connector)[1:-1]} in {where}")
    return connector


def open_bucket(
    actor: DataActor, path: ConnectorPath, *, operation: str, write: bool
) -> ConnectorBucket:
    """The bucket behind `path` for this request, once the actor may do `operation` there;
    the use of the secret is audited."""
    connector = connector_of(actor, path)
    if write and not can_write(actor, connector.team):
        raise AuthorizationError(f"you may read {path.uri()}, not change it")
    endpoint = effective_endpoint(connector)
    try:
        check_endpoint(endpoint)
    except OutboundRefused as refusal:
        raise ConnectorRefusedError(
            f"the connector s3://{connector.name} points at an endpoint the platform does not "
            f"connect to: {refusal}"
        ) from None
    try:
        secret = decrypt_secret(connector.secret_encrypted)
    except SecretUnreadable:
        raise InputError(
            f"the secret of s3://{connector.name} cannot be decrypted with this platform's "
            "keys: enter it again on the connector's page"
        ) from None
    audit_record(
        action=Action.CONNECTOR_USED,
        team=connector.team,
        principal=actor.principal,
        target_type="connector",
        target_id=str(connector.pk),
        target_repr=path.uri(),
        after={"operation": operation},
    )
    client = s3_client(
        endpoint_url=connector.endpoint_url or None,
        region=connector.region,
        access_key_id=connector.access_key_id,
        secret=secret,
    )
    return ConnectorBucket(client, connector.bucket, connector.prefix)
