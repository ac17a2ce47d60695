"""Reads for monitoring: a model's figures over time for its owners (calls, errors, latency
percentiles, cold starts, per hour or day and per version), its latest errors, an owner's
dashboard, the request log, and the platform report for staff.

Latency is the round trip of a finished call, accepted to finished (`finished_at -
created_at`), as on the model page (gateway.selectors.model_usage_summary); percentiles are
PostgreSQL's percentile_cont (linear interpolation between the two nearest calls). A call
counts once it has finished: succeeded, failed (the model raised) or timed out; errors are
the failed and timed-out ones. Buckets are UTC hours or days."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Case, Q, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from billing.models import ERROR_STATUSES as USAGE_ERROR_STATUSES
from billing.reports import ROLLED_UP_JOIN, Report, ReportRow, report_row, validate_range
from billing.selectors import fill_days
from catalog.models import Model
from catalog.selectors import model_get
from gateway import services as gateway_services
from gateway.models import Invocation, InvocationStatus
from gateway.selectors import ErrorRates
from marketplace.accounts.models import Team, User
from marketplace.accounts.selectors import teams_for_user
from marketplace.core.errors import InputError, NotFoundError

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# The most buckets one request may ask for: a month by the hour, a year by the day.
MAX_BUCKETS = {"hour": 24 * 31, "day": 366}
# The windows the pages offer: name -> (label, bucket, how many buckets).
WINDOWS = {
    "24h": ("Last 24 hours", "hour", 24),
    "7d": ("Last 7 days", "day", 7),
    "30d": ("Last 30 days", "day", 30),
}
COUNTED_STATUSES = (InvocationStatus.SUCCEEDED, InvocationStatus.FAILED, InvocationStatus.TIMEOUT)
ERROR_STATUSES = (InvocationStatus.FAILED, InvocationStatus.TIMEOUT)
PERCENTILES = (0.5, 0.95, 0.99)
ERRORS_PAGE_SIZE = 50
MAX_ERRORS_PAGE_SIZE = 200
ERROR_TYPES_DAYS = 30
PLATFORM_GROUPS = ("team", "model", "day")
_CURSOR = re.compile(r"^(\d{1,20})\.([0-9a-f-]{36})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sql_list(values) -> str:
    return ", ".join(f"'{value}'" for value in values)


# -- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures(ErrorRates):
    """Finished calls, errors among them, cold starts, and latency percentiles in
    milliseconds (None without calls)."""

    calls: int = 0
    errors: int = 0
    cold_starts: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    def as_dict(self) -> dict:
        return {
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "cold_starts": self.cold_starts,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


def _figures(calls, errors, cold_starts, percentiles) -> Figures:
    p50, p95, p99 = percentiles if percentiles else (None, None, None)
    return Figures(int(calls or 0), int(errors or 0), int(cold_starts or 0), p50, p95, p99)


# Aggregates over a subquery `calls` with the columns status, cold_start and latency_ms.
_AGGREGATES = f"""
    count(*),
    count(*) FILTER (WHERE status IN ({_sql_list(ERROR_STATUSES)})),
    count(*) FILTER (WHERE cold_start),
    percentile_cont(ARRAY[{", ".join(str(p) for p in PERCENTILES)}])
        WITHIN GROUP (ORDER BY latency_ms)
"""
_FINISHED = f"status IN ({_sql_list(COUNTED_STATUSES)}) AND finished_at IS NOT NULL"
_LATENCY_MS = "extract(epoch FROM finished_at - created_at)::double precision * 1000"


# -- time windows ------------------------------------------------------------------------------


def floor_to_bucket(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if bucket == "day" else moment


def ceil_to_bucket(moment: datetime, bucket: str) -> datetime:
    floor = floor_to_bucket(moment, bucket)
    return floor if floor == moment else floor + BUCKETS[bucket]


def bucket_starts(start: datetime, end: datetime, bucket: str) -> list[datetime]:
    step, starts, moment = BUCKETS[bucket], [], start
    while moment < end:
        starts.append(moment)
        moment += step
    return starts


@dataclass(frozen=True)
class Window:
    name: str
    label: str
    bucket: str
    start: datetime
    end: datetime


def window(name: str | None, *, now: datetime | None = None, default: str = "24h") -> Window:
    """One of WINDOWS ending with the bucket that holds `now` (the current hour or day, so
    far). An unknown name is an InputError."""
    name = name or default
    if name not in WINDOWS:
        raise InputError(f"window: one of {', '.join(WINDOWS)}", fields={"window": ["unknown"]})
    label, bucket, count = WINDOWS[name]
    end = floor_to_bucket(now or timezone.now(), bucket) + BUCKETS[bucket]
    return Window(name, label, bucket, end - count * BUCKETS[bucket], end)


def _check_range(start: datetime, end: datetime, bucket: str) -> tuple[datetime, datetime]:
    if bucket not in BUCKETS:
        raise InputError(f"bucket: one of {', '.join(BUCKETS)}", fields={"bucket": ["unknown"]})
    start, end = floor_to_bucket(start, bucket), ceil_to_bucket(end, bucket)
    if end <= start:
        raise InputError("end: must be after start", fields={"end": ["before start"]})
    if (end - start) / BUCKETS[bucket] > MAX_BUCKETS[bucket]:
        raise InputError(
            f"at most {MAX_BUCKETS[bucket]} buckets of a {bucket} at once",
            fields={"start": ["too early for this bucket"]},
        )
    return start, end


# -- a model's figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    start: datetime
    figures: Figures


@dataclass(frozen=True)
class VersionMetrics:
    version: str
    totals: Figures
    buckets: list[Bucket]


@dataclass(frozen=True)
class ModelMetrics:
    model: Model
    start: datetime
    end: datetime
    bucket: str
    version: str | None
    totals: Figures
    buckets: list[Bucket]
    versions: list[VersionMetrics] = field(default_factory=list)

    @property
    def has_calls(self) -> bool:
        return self.totals.calls > 0


def version_sort_key(label: str) -> tuple:
    """Newest semantic version first; anything else (a build hash) after them, by name."""
    parts = label.split(".")
    if len(parts) == 3 and all(part.isdigit() for part in parts):
        return (0, *(-int(part) for part in parts), "")
    return (1, 0, 0, 0, label)


def model_metrics(
    model: Model,
    *,
    start: datetime,
    end: datetime,
    bucket: str = "hour",
    version: str | None = None,
) -> ModelMetrics:
    """Per bucket from `start` to `end` (widened to whole buckets), for every version (or
    only `version`, a label such as "1.2.0"): calls, errors, cold starts and p50/p95/p99
    latency; the same per version; and for the whole range. Every bucket of the range is
    listed, zero (and None percentiles) when it had no calls.

    One scan of the model's calls in the range (index model, -created_at), grouped by
    bucket, by bucket and version, by version, and overall with GROUPING SETS, so each
    percentile is computed over exactly the calls of its group."""
    start, end = _check_range(start, end, bucket)
    params: list = [model.pk, start, end]
    only_version = ""
    if version:
        only_version = "AND version_label = %s"
        params.append(version)
    sql = f"""
        SELECT GROUPING(bucket), GROUPING(version_label), bucket, version_label, {_AGGREGATES}
        FROM (
            SELECT date_trunc('{bucket}', created_at, 'UTC') AS bucket, version_label,
                   status, cold_start, {_LATENCY_MS} AS latency_ms
            FROM {Invocation._meta.db_table}
            WHERE model_id = %s AND created_at >= %s AND created_at < %s
              AND {_FINISHED} {only_version}
        ) AS calls
        GROUP BY GROUPING SETS ((bucket), (bucket, version_label), (version_label), ())
    """  # noqa: S608 - only constants are interpolated; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()

    totals = Figures()
    overall: dict[datetime, Figures] = {}
    per_version: dict[str, dict[datetime, Figures]] = {}
    version_totals: dict[str, Figures] = {}
    for all_buckets, all_versions, moment, label, *measures in fetched:
        figures = _figures(*measures)
        if all_buckets and all_versions:
            totals = figures
        elif all_versions:
            overall[moment] = figures
        elif all_buckets:
            version_totals[label] = figures
        else:
            per_version.setdefault(label, {})[moment] = figures
    starts = bucket_starts(start, end, bucket)

    def series(by_start: dict[datetime, Figures]) -> list[Bucket]:
        return [Bucket(moment, by_start.get(moment, Figures())) for moment in starts]

    versions = [
        VersionMetrics(label, version_totals[label], series(per_version.get(label, {})))
        for label in sorted(version_totals, key=version_sort_key)
    ]
    return ModelMetrics(
        model, start, end, bucket, version or None, totals, series(overall), versions
    )


def version_choices(model: Model, metrics: ModelMetrics | None = None) -> list[str]:
    """The versions an owner may filter by: every published one and any other label that
    was called in the range shown, newest first."""
    labels = {version.number for version in model.versions.all()}
    if metrics is not None:
        labels |= {version.version for version in metrics.versions}
        if metrics.version:
            labels.add(metrics.version)
    return sorted(labels, key=version_sort_key)


# -- who may see a model's monitoring ----------------------------------------------------------


def monitored_model_get(principal, owner: str, name: str) -> Model:
    """A model, to the members of the team that owns it. Anyone else, including its
    callers, is told it does not exist (404)."""
    model = model_get(principal, owner, name)
    if principal is None or not principal.is_member(model.owner):
        raise NotFoundError(f"No model named {owner}/{name} among your teams' models")
    return model


# -- errors ------------------------------------------------------------------------------------


def error_kind():
    """An invocation's error type: the one the model (or the platform) gave, else
    TimeoutError for a timeout and Error for anything else."""
    return Coalesce(
        NullIf(KT("error__error_type"), Value("")),
        Case(
            When(status=InvocationStatus.TIMEOUT, then=Value("TimeoutError")),
            default=Value("Error"),
        ),
        output_field=TextField(),
    )


@dataclass(frozen=True)
class ErrorPage:
    errors: list[Invocation]
    next_cursor: str | None
    version: str | None
    error_type: str | None


def encode_cursor(invocation: Invocation) -> str:
    micros = (invocation.created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{invocation.pk}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    match = _CURSOR.match(cursor or "")
    try:
        if not match:
            raise ValueError
        return _EPOCH + timedelta(microseconds=int(match[1])), uuid.UUID(match[2])
    except (ValueError, OverflowError):
        raise InputError(
            "before: not a cursor from a previous page", fields={"before": ["not a cursor"]}
        ) from None


def model_errors(
    model: Model,
    *,
    version: str | None = None,
    error_type: str | None = None,
    limit: int = ERRORS_PAGE_SIZE,
    before: str | None = None,
) -> ErrorPage:
    """The model's failed and timed-out calls, newest first, `limit` at a time; `before` is
    the previous page's `next_cursor` (keyset pagination on created_at, id, so a page never
    repeats or skips a call when new ones arrive). Each invocation has `error_kind`."""
    if not 1 <= limit <= MAX_ERRORS_PAGE_SIZE:
        raise InputError(
            f"limit: from 1 to {MAX_ERRORS_PAGE_SIZE}", fields={"limit": ["out of range"]}
        )
    errors = (
        Invocation.objects.filter(model=model, status__in=ERROR_STATUSES)
        .annotate(error_kind=error_kind())
        .select_related("caller_team")
        .only(
            "id",
            "model_id",
            "status",
            "version_label",
            "caller_team__slug",
            "input_preview",
            "input_content_type",
            "error",
            "created_at",
            "finished_at",
            "cold_start",
        )
        .order_by("-created_at", "-id")
    )
    if version:
        errors = errors.filter(version_label=version)
    if error_type:
        errors = errors.filter(error_kind=error_type)
    if before:
        moment, pk = decode_cursor(before)
        errors = errors.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    page = list(errors[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return ErrorPage(
        errors=page,
        next_cursor=encode_cursor(page[-1]) if more else None,
        version=version or None,
        error_type=error_type or None,
    )


def model_error_types(model: Model, *, days: int = ERROR_TYPES_DAYS) -> list[str]:
    """The error types of the model's errors over the last `days` days, for a filter."""
    since = timezone.now() - timedelta(days=days)
    return sorted(
        Invocation.objects.filter(model=model, status__in=ERROR_STATUSES, created_at__gte=since)
        .annotate(kind=error_kind())
        .values_list("kind", flat=True)
        .distinct()
        .order_by()
    )


# -- an owner's dashboard ----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFigures:
    model: Model
    figures: Figures


@dataclass(frozen=True)
class TeamDashboard:
    team: Team
    start: datetime
    end: datetime
    models: list[ModelFigures]

    @property
    def calls(self) -> int:
        return sum(row.figures.calls for row in self.models)

    @property
    def errors(self) -> int:
        return sum(row.figures.errors for row in self.models)


def owner_dashboard(team: Team, *, start: datetime, end: datetime) -> TeamDashboard:
    """Every model of `team` with its figures from `start` to `end`: the most called first
    (then by name), models without calls included."""
    models = list(Model.objects.filter(owner=team).select_related("owner"))
    by_model: dict = {}
    if models:
        sql = f"""
            SELECT model_id, {_AGGREGATES}
            FROM (
                SELECT model_id, status, cold_start, {_LATENCY_MS} AS latency_ms
                FROM {Invocation._meta.db_table}
                WHERE model_id = ANY(%s) AND created_at >= %s AND created_at < %s
                  AND {_FINISHED}
            ) AS calls
            GROUP BY model_id
        """  # noqa: S608 - only constants are interpolated
        with connection.cursor() as cursor:
            cursor.execute(sql, [[model.pk for model in models], start, end])
            by_model = {row[0]: _figures(*row[1:]) for row in cursor.fetchall()}
    rows = [ModelFigures(model, by_model.get(model.pk, Figures())) for model in models]
    rows.sort(key=lambda row: (-row.figures.calls, row.model.slug))
    return TeamDashboard(team, start, end, rows)


def user_dashboards(user: User, *, start: datetime, end: datetime) -> list[TeamDashboard]:
    """The dashboard of each namespace `user` belongs to that owns models."""
    teams = teams_for_user(user).filter(models__isnull=False).distinct()
    return [owner_dashboard(team, start=start, end=end) for team in teams]


# -- the request log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedRequest:
    invocation: Invocation
    is_owner: bool
    is_caller: bool = False

    @property
    def nested_calls(self) -> list[Invocation]:
        """The calls the model made while it ran for this caller (billed to the caller):
        shown to the caller's namespace only."""
        if not self.is_caller:
            return []
        return list(
            Invocation.objects.filter(parent=self.invocation)
            .select_related("model__owner")
            .order_by("created_at")[:50]
        )

    @property
    def latency_ms(self) -> float | None:
        invocation = self.invocation
        if invocation.finished_at is None:
            return None
        return (invocation.finished_at - invocation.created_at).total_seconds() * 1000

    @property
    def error_kind(self) -> str | None:
        invocation = self.invocation
        if not invocation.error and invocation.status not in ERROR_STATUSES:
            return None
        kind = (invocation.error or {}).get("error_type")
        return kind or (
            "TimeoutError" if invocation.status == InvocationStatus.TIMEOUT else "Error"
        )


def invocation_lookup(principal, request_id: str) -> LoggedRequest:
    """One invocation by its request id, to its caller's namespace and the model's owners
    (the gateway's rule); to anyone else it does not exist."""
    try:
        parsed = uuid.UUID(str(request_id).strip())
    except ValueError:
        raise InputError(
            "id: a request id looks like 0b8e5c1e-3f1a-4c2b-9d7e-5a6f7b8c9d0e",
            fields={"id": ["not a request id"]},
        ) from None
    if principal is None or principal.user is None:
        raise NotFoundError(f"No invocation {parsed}")
    invocation = gateway_services.invocation_get(principal, parsed)
    return LoggedRequest(
        invocation,
        is_owner=principal.is_member(invocation.model.owner),
        is_caller=principal.is_member(invocation.caller_team),
    )


# -- the platform report -----------------------------------------------------------------------


def is_platform_admin(principal) -> bool:
    """Staff, through a session or a personal key: a team key never reads every team."""
    user = principal.user if principal is not None else None
    return bool(user is not None and user.is_active and user.is_staff and not principal.team_key)


def require_platform_admin(principal) -> None:
    """The platform report is for staff; to anyone else it does not exist."""
    if not is_platform_admin(principal):
        raise NotFoundError("No such page")


_PLATFORM_DIMENSIONS = {"team": "team_id", "model": "model_name", "day": "day"}


def platform_usage(start: date, end: date, group_by: str | None = "team") -> Report:
    """Usage of every team and model from `start` to `end` (UTC days, inclusive): the sums
    of the usage records, read like billing.reports.usage_report does (rolled-up days from
    their rollups plus later records), without its one-team scope. Per day, every day of
    the range has its row; per team or model, the most spent first."""
    if group_by is not None and group_by not in _PLATFORM_DIMENSIONS:
        raise InputError(
            f"group_by: one of {', '.join(PLATFORM_GROUPS)}", fields={"group_by": ["unknown"]}
        )
    validate_range(start, end)
    dim = _PLATFORM_DIMENSIONS.get(group_by or "")
    errors = _sql_list(USAGE_ERROR_STATUSES)
    records = f"""
        SELECT {f"r.{dim} AS dim, " if dim else ""}1 AS calls,
               CASE WHEN r.billed THEN 1 ELSE 0 END AS billed_calls,
               CASE WHEN r.status IN ({errors}) THEN 1 ELSE 0 END AS errors,
               CASE WHEN r.status = 'rejected' THEN 1 ELSE 0 END AS rejected,
               r.billed_seconds, r.compute_cost, r.royalty, r.total
        FROM billing_usagerecord r {ROLLED_UP_JOIN}
        WHERE r.day BETWEEN %s AND %s AND (d.id IS NULL OR r.created_at > d.rolled_up_at)
        UNION ALL
        SELECT {f"u.{dim}, " if dim else ""}u.calls, u.billed_calls,
               CASE WHEN u.status IN ({errors}) THEN u.calls ELSE 0 END,
               CASE WHEN u.status = 'rejected' THEN u.calls ELSE 0 END,
               u.billed_seconds, u.compute_cost, u.royalty, u.total
        FROM billing_usagerollup u WHERE u.day BETWEEN %s AND %s
    """  # noqa: S608 - only constants are interpolated
    sql = f"""
        SELECT {"dim, " if dim else ""}sum(calls), sum(billed_calls), sum(errors),
               sum(rejected), sum(billed_seconds), sum(compute_cost), sum(royalty), sum(total)
        FROM ({records}) AS src {"GROUP BY dim" if dim else ""}
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [start, end, start, end])
        fetched = cursor.fetchall()
    width = 1 if dim else 0
    rows = [report_row(values[:width], values[width:]) for values in fetched]
    rows = [row for row in rows if row.calls]
    totals = ReportRow(label="Total")
    for row in rows:
        totals.add(row)
    _label_platform_rows(rows, group_by)
    report = Report(start, end, group_by, totals, rows)
    if group_by == "day":
        return fill_days(report)
    rows.sort(key=lambda r: (-r.total, -r.calls, r.label))
    return report


def _label_platform_rows(rows: list[ReportRow], group_by: str | None) -> None:
    if group_by == "team":
        slugs = dict(Team.objects.filter(pk__in=[r.key[0] for r in rows]).values_list("pk", "slug"))
        for row in rows:
            row.label = slugs.get(row.key[0], f"(team {row.key[0]})")
    elif group_by == "day":
        for row in rows:
            row.label = row.key[0].isoformat()
    else:
        for row in rows:
            row.label = str(row.key[0]) if row.key else "Total"


def platform_row_key(group_by: str | None, row: ReportRow) -> str | None:
    """A row's identity in the API and CSV: a team slug, "owner/name" or an ISO day."""
    if not group_by:
        return None
    if group_by == "day":
        return row.key[0].isoformat()
    return row.label
