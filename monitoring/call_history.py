"""Reads for a team's call history (the Calls page and GET /v1/teams/{team}/calls): its
calls, newest first, with their status, duration and cost, and the calls the platform
refused for it with their reason, filtered by model, status and key, paged by a keyset
cursor so a team with millions of calls pages as fast as one with ten.

Calls come from the gateway's invocations (index invocation_key_created for one key,
(caller_team, created_at) for a team); refused calls from gateway.RefusedCall, one row per
caller, reason and minute with its count. Cost is the call's usage record's total."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, Subquery

from billing.models import UsageRecord
from catalog.models import Model
from gateway.models import Invocation, InvocationStatus, KeptCallBody, RefusedCall
from marketplace.accounts.models import ApiKey, Team
from marketplace.core.errors import InputError, NotFoundError

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
REFUSED = "refused"
STATUS_CHOICES = [*InvocationStatus.choices, (REFUSED, "Refused by the platform")]
STATUSES = {value for value, _label in STATUS_CHOICES}
_MODEL = re.compile(r"^([A-Za-z0-9_-]{1,39})/([A-Za-z0-9_.-]{1,100})$")
_CURSOR = re.compile(r"^(\d{1,20})\.([cr])\.([0-9a-f-]{36}|\d{1,20})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Refused rows sort after the calls of the same instant (r > c).
_KIND_RANK = {"c": 0, "r": 1}


@dataclass(frozen=True)
class CallFilters:
    model: str | None = None  # "owner/name"
    status: str | None = None
    key: str | None = None  # a key's prefix

    def as_params(self) -> dict:
        return {"model": self.model or "", "status": self.status or "", "key": self.key or ""}


@dataclass(frozen=True)
class CallRow:
    """One line of the history: a call (`kind` "c") or refused calls (`kind` "r", `count`
    of them in the minute from `at`)."""

    kind: str
    id: object
    at: datetime
    request_id: uuid.UUID
    model_name: str
    version: str
    status: str
    status_label: str
    key_prefix: str
    duration: float | None = None
    cost: Decimal | None = None
    kept: bool = False
    reason: str = ""
    message: str = ""
    count: int = 1

    @property
    def is_refused(self) -> bool:
        return self.kind == "r"

    @property
    def sort_key(self) -> tuple:
        return (self.at, _KIND_RANK[self.kind], self.id)


@dataclass(frozen=True)
class CallsPage:
    rows: list[CallRow]
    next_cursor: str | None
    filters: CallFilters


def call_filters(params, *, key: ApiKey | None = None) -> CallFilters:
    """The filters of a request's query string; a clear InputError for a bad one."""
    model = (params.get("model") or "").strip() or None
    if model is not None and not _MODEL.match(model):
        raise InputError("model: write it owner/name", fields={"model": ["not owner/name"]})
    status = (params.get("status") or "").strip().lower() or None
    if status is not None and status not in STATUSES:
        raise InputError(
            f"status: one of {', '.join(sorted(STATUSES))}", fields={"status": ["unknown"]}
        )
    prefix = key.prefix if key is not None else (params.get("key") or "").strip() or None
    return CallFilters(model=model, status=status, key=prefix)


def encode_cursor(row: CallRow) -> str:
    micros = (row.at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{row.kind}.{row.id}"


def decode_cursor(cursor: str) -> tuple[datetime, str, object]:
    match = _CURSOR.match(cursor or "")
    try:
        if not match:
            raise ValueError
        at = _EPOCH + timedelta(microseconds=int(match[1]))
        row_id = uuid.UUID(match[3]) if match[2] == "c" else int(match[3])
    except (ValueError, OverflowError):
        raise InputError(
            "before: not a cursor from a previous page", fields={"before": ["not a cursor"]}
        ) from None
    return at, match[2], row_id


def _after_cursor(field: str, kind: str, cursor) -> Q:
    """Rows of `kind` that come after (are older than) the cursor's row."""
    at, cursor_kind, cursor_id = cursor
    if kind == cursor_kind:
        return Q(**{f"{field}__lt": at}) | Q(**{field: at, "id__lt": cursor_id})
    if _KIND_RANK[kind] < _KIND_RANK[cursor_kind]:
        return Q(**{f"{field}__lte": at})
    return Q(**{f"{field}__lt": at})


def _model_of(name: str) -> Model | None:
    owner, slug = name.split("/", 1)
    return (
        Model.objects.filter(owner__slug=owner.replace("_", "-"), slug=slug).first()
        or Model.objects.filter(owner__slug=owner, slug=slug).first()
    )


def _calls(team: Team, filters: CallFilters, cursor, limit: int) -> list[CallRow]:
    if filters.status == REFUSED:
        return []
    calls = Invocation.objects.filter(caller_team=team)
    if filters.key:
        calls = calls.filter(api_key__prefix=filters.key)
    if filters.model:
        model = _model_of(filters.model)
        if model is None:
            return []
        calls = calls.filter(model=model)
    if filters.status:
        calls = calls.filter(status=filters.status)
    if cursor is not None:
        calls = calls.filter(_after_cursor("created_at", "c", cursor))
    cost = UsageRecord.objects.filter(request_id=OuterRef("pk"), billed=True).values("total")[:1]
    calls = (
        calls.select_related("model__owner", "api_key")
        .only(
            "id",
            "created_at",
            "started_at",
            "finished_at",
            "status",
            "version_label",
            "model__slug",
            "model__owner__slug",
            "api_key__prefix",
        )
        .annotate(cost=Subquery(cost), kept=Exists(KeptCallBody.objects.filter(pk=OuterRef("pk"))))
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        CallRow(
            kind="c",
            id=call.pk,
            at=call.created_at,
            request_id=call.pk,
            model_name=f"{call.model.owner.slug}/{call.model.slug}",
            version=call.version_label,
            status=call.status,
            status_label=call.get_status_display(),
            key_prefix=call.api_key.prefix if call.api_key else "",
            duration=call.duration,
            cost=call.cost,
            kept=call.kept,
        )
        for call in calls
    ]


def _refused(team: Team, filters: CallFilters, cursor, limit: int) -> list[CallRow]:
    if filters.status not in (None, REFUSED):
        return []
    refused = RefusedCall.objects.filter(team=team)
    if filters.key:
        refused = refused.filter(api_key__prefix=filters.key)
    if filters.model:
        owner, slug = filters.model.split("/", 1)
        refused = refused.filter(
            model_name__in={filters.model, f"{owner.replace('-', '_')}/{slug}"}
        )
    if cursor is not None:
        refused = refused.filter(_after_cursor("first_at", "r", cursor))
    refused = refused.select_related("api_key").order_by("-first_at", "-id")[:limit]
    return [
        CallRow(
            kind="r",
            id=row.pk,
            at=row.first_at,
            request_id=row.request_id,
            model_name=row.model_name,
            version=row.version_label,
            status=REFUSED,
            status_label=f"Refused ({row.status_code})",
            key_prefix=row.api_key.prefix if row.api_key else "",
            reason=row.reason,
            message=row.message,
            count=row.count,
        )
        for row in refused
    ]


def team_calls(
    team: Team,
    filters: CallFilters | None = None,
    *,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> CallsPage:
    """The team's calls and refused calls, newest first, `limit` at a time; `before` is the
    previous page's `next_cursor`. Each kind is read by its own index, `limit + 1` rows at
    most, and the two merged: a page never repeats or skips a row when new ones arrive."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InputError(f"limit: from 1 to {MAX_PAGE_SIZE}", fields={"limit": ["out of range"]})
    filters = filters or CallFilters()
    cursor = decode_cursor(before) if before else None
    rows = _calls(team, filters, cursor, limit + 1) + _refused(team, filters, cursor, limit + 1)
    rows.sort(key=lambda row: row.sort_key, reverse=True)
    more = len(rows) > limit
    rows = rows[:limit]
    return CallsPage(rows, encode_cursor(rows[-1]) if more else None, filters)


def team_keys(team: Team) -> list[ApiKey]:
    """The team's keys, for the key filter and their pages."""
    return list(ApiKey.objects.filter(team=team).order_by("revoked_at", "-created_at"))


def team_key_get(team: Team, key_id) -> ApiKey:
    """One key of the team; a key of another team does not exist here."""
    key = ApiKey.objects.filter(team=team, pk=key_id).select_related("team").first()
    if key is None:
        raise NotFoundError("No such key in this team")
    return key
