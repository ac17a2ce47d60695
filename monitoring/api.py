"""Monitoring over the API: a model's metrics and errors for its owners, a team's call
history for its members, and the platform usage report for staff (JSON or CSV)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors as billing_selectors
from billing.api import ReportApi
from marketplace.accounts.principals import Principal
from marketplace.accounts.scopes import BILLING_READ
from marketplace.accounts.selectors import team_for_principal
from marketplace.core.errors import InputError

from . import call_history, exports, selectors

DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}


# -- serializers -------------------------------------------------------------------------------


class FiguresOutput(serializers.Serializer):
    calls = serializers.IntegerField(help_text="Finished calls: succeeded, failed, timed out")
    errors = serializers.IntegerField(help_text="Failed (the model raised) and timed out")
    error_rate = serializers.FloatField(allow_null=True, help_text="errors / calls")
    cold_starts = serializers.IntegerField()
    p50_ms = serializers.FloatField(
        allow_null=True, help_text="Median latency (accepted to finished), milliseconds"
    )
    p95_ms = serializers.FloatField(allow_null=True)
    p99_ms = serializers.FloatField(allow_null=True)


class BucketOutput(FiguresOutput):
    start = serializers.DateTimeField(help_text="Start of the UTC hour or day")


class VersionMetricsOutput(serializers.Serializer):
    version = serializers.CharField()
    totals = FiguresOutput()
    buckets = BucketOutput(many=True)


class MetricsOutput(serializers.Serializer):
    model = serializers.CharField()
    bucket = serializers.ChoiceField(choices=list(selectors.BUCKETS))
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive")
    version = serializers.CharField(allow_null=True)
    totals = FiguresOutput()
    buckets = BucketOutput(many=True)
    versions = VersionMetricsOutput(many=True)


class ErrorOutput(serializers.Serializer):
    request_id = serializers.UUIDField(source="id")
    created_at = serializers.DateTimeField()
    status = serializers.CharField()
    version = serializers.CharField(source="version_label")
    caller = serializers.CharField(source="caller_team.slug")
    error_type = serializers.CharField(source="error_kind")
    message = serializers.SerializerMethodField()
    stacktrace = serializers.SerializerMethodField()
    input_preview = serializers.CharField(help_text="The first 128 characters of the input")

    def get_message(self, invocation) -> str:
        return str((invocation.error or {}).get("message") or "")

    def get_stacktrace(self, invocation) -> str | None:
        return (invocation.error or {}).get("stacktrace") or None


class ErrorListOutput(serializers.Serializer):
    model = serializers.CharField()
    version = serializers.CharField(allow_null=True)
    error_type = serializers.CharField(allow_null=True)
    errors = ErrorOutput(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="Pass as `before` for the next (older) page"
    )


def _bucket_dicts(buckets) -> list[dict]:
    return [{"start": b.start, **b.figures.as_dict()} for b in buckets]


# -- parsing -----------------------------------------------------------------------------------


def _moment(params, name: str) -> datetime | None:
    """An ISO 8601 datetime (naive means UTC) or date (its midnight, UTC)."""
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
        if moment is None:
            day = parse_date(raw)
            moment = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise InputError(
            f"{name}: use an ISO 8601 date or datetime, not {raw[:40]!r}",
            fields={name: ["not a datetime"]},
        )
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


# -- views -------------------------------------------------------------------------------------


class ModelMetricsApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("bucket", str, enum=list(selectors.BUCKETS), description="hour"),
            OpenApiParameter(
                "start",
                OpenApiTypes.DATETIME,
                description="Default: 24 hours (by hour) or 30 days (by day) before end",
            ),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="Exclusive; default now"),
            OpenApiParameter("version", str, description="Only this version, e.g. 1.2.0"),
        ],
        responses=MetricsOutput,
        summary="A model's calls, errors, latency percentiles and cold starts over time",
        description=(
            "For the model's owners (anyone else: 404). Per UTC hour or day (the range is "
            "widened to whole buckets, every bucket listed), per version, and in total. "
            "Latency is accepted to finished; percentiles interpolate linearly "
            "(PostgreSQL percentile_cont)."
        ),
        tags=["monitoring"],
    )
    def get(self, request, owner, name):
        model = selectors.monitored_model_get(Principal.from_request(request), owner, name)
        params = request.query_params
        bucket = (params.get("bucket") or "hour").strip()
        if bucket not in selectors.BUCKETS:
            raise InputError(
                f"bucket: one of {', '.join(selectors.BUCKETS)}", fields={"bucket": ["unknown"]}
            )
        end = _moment(params, "end") or timezone.now()
        start = _moment(params, "start") or end - DEFAULT_SPAN[bucket]
        metrics = selectors.model_metrics(
            model,
            start=start,
            end=end,
            bucket=bucket,
            version=(params.get("version") or "").strip() or None,
        )
        body = {
            "model": model.full_name,
            "bucket": metrics.bucket,
            "start": metrics.start,
            "end": metrics.end,
            "version": metrics.version,
            "totals": metrics.totals.as_dict(),
            "buckets": _bucket_dicts(metrics.buckets),
            "versions": [
                {
                    "version": v.version,
                    "totals": v.totals.as_dict(),
                    "buckets": _bucket_dicts(v.buckets),
                }
                for v in metrics.versions
            ],
        }
        return Response(MetricsOutput(body).data)


class ModelErrorsApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("version", str, description="Only this version"),
            OpenApiParameter("error_type", str, description="Only this error type"),
            OpenApiParameter("limit", int, description=f"At most {selectors.MAX_ERRORS_PAGE_SIZE}"),
            OpenApiParameter("before", str, description="`next` of the previous page"),
        ],
        responses=ErrorListOutput,
        summary="A model's latest errors, newest first",
        description=(
            "Failed and timed-out calls with their request id, version, caller, the first "
            "128 characters of the input, error type, message and stack trace. For the "
            "model's owners (anyone else: 404)."
        ),
        tags=["monitoring"],
    )
    def get(self, request, owner, name):
        model = selectors.monitored_model_get(Principal.from_request(request), owner, name)
        params = request.query_params
        try:
            limit = int(params.get("limit") or selectors.ERRORS_PAGE_SIZE)
        except ValueError:
            raise InputError("limit: a whole number", fields={"limit": ["not a number"]}) from None
        page = selectors.model_errors(
            model,
            version=(params.get("version") or "").strip() or None,
            error_type=(params.get("error_type") or "").strip() or None,
            limit=limit,
            before=params.get("before") or None,
        )
        body = {
            "model": model.full_name,
            "version": page.version,
            "error_type": page.error_type,
            "errors": page.errors,
            "next": page.next_cursor,
        }
        return Response(ErrorListOutput(body).data)


class PlatformUsageApi(ReportApi):
    """Billing's report view (JSON or CSV, errors always JSON) over every team."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "start",
                OpenApiTypes.DATE,
                description="First day, inclusive; ignored with a preset range",
            ),
            OpenApiParameter(
                "end",
                OpenApiTypes.DATE,
                description="Last day, inclusive; ignored with a preset range",
            ),
            OpenApiParameter(
                "range", str, enum=[*billing_selectors.PRESETS, billing_selectors.CUSTOM]
            ),
            OpenApiParameter("group_by", str, enum=list(selectors.PLATFORM_GROUPS)),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses={
            (200, "application/json"): exports.PlatformReportOutput,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same, as CSV"),
        },
        summary="Usage across every team and model (platform staff)",
        description="Sums of every usage record, by team, model or day. Staff only (else 404).",
        tags=["monitoring"],
    )
    def get(self, request):
        selectors.require_platform_admin(Principal.from_request(request))
        query = billing_selectors.report_query_from_params(
            request.query_params,
            groups=selectors.PLATFORM_GROUPS,
            default_group_by="team",
            by_project=False,
        )
        report = selectors.platform_usage(query.start, query.end, group_by=query.group_by)
        response = Response(exports.platform_body(report))
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="{exports.csv_name(report)}"'
        return response


# -- a team's call history ---------------------------------------------------------------------


class CallOutput(serializers.Serializer):
    kind = serializers.SerializerMethodField(help_text="call, or refused")
    at = serializers.DateTimeField(help_text="Accepted; for refused calls, the first of them")
    request_id = serializers.UUIDField(help_text="For refused calls, the first one's")
    model = serializers.CharField(source="model_name")
    version = serializers.CharField()
    status = serializers.CharField()
    duration = serializers.FloatField(allow_null=True, help_text="Seconds, started to finished")
    cost = serializers.DecimalField(
        max_digits=20, decimal_places=6, allow_null=True, help_text="Billed credits"
    )
    key = serializers.CharField(source="key_prefix", help_text="The key's prefix; blank: session")
    inputs_kept = serializers.BooleanField(source="kept")
    reason = serializers.CharField(help_text="Refused calls: the error type they were refused with")
    message = serializers.CharField()
    count = serializers.IntegerField(help_text="Refused calls: how many in that minute")

    def get_kind(self, row) -> str:
        return "refused" if row.is_refused else "call"


class CallListOutput(serializers.Serializer):
    calls = CallOutput(many=True)
    next = serializers.CharField(allow_null=True, help_text="Pass as `before` for older calls")


class TeamCallsApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("model", str, description="Only calls to this model (owner/name)"),
            OpenApiParameter(
                "status", str, enum=sorted(call_history.STATUSES), description="Only this status"
            ),
            OpenApiParameter("key", str, description="Only calls with the key of this prefix"),
            OpenApiParameter("limit", int, description=f"At most {call_history.MAX_PAGE_SIZE}"),
            OpenApiParameter("before", str, description="`next` of the previous page"),
        ],
        responses=CallListOutput,
        summary="A team's calls and refused calls, newest first",
        description=(
            "The team's call history: each call's time, model, version, status, duration, "
            "cost and request id, and the calls the platform refused (4xx) with their reason, "
            "counted per key, reason and minute. For the team's members with billing:read "
            "(anyone else: 404)."
        ),
        tags=["monitoring"],
    )
    def get(self, request, team):
        principal = Principal.from_request(request)
        team_obj = team_for_principal(principal, team)
        principal.require_scope(BILLING_READ, "read call history")
        params = request.query_params
        try:
            limit = int(params.get("limit") or call_history.PAGE_SIZE)
        except ValueError:
            raise InputError("limit: a whole number", fields={"limit": ["not a number"]}) from None
        page = call_history.team_calls(
            team_obj,
            call_history.call_filters(params),
            before=params.get("before") or None,
            limit=limit,
        )
        return Response(CallListOutput({"calls": page.rows, "next": page.next_cursor}).data)
