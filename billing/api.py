"""/v1/teams/{team}/usage and /v1/teams/{team}/earnings: showback reports as JSON or CSV.

Both formats carry the same exact figures: money as strings with six places, compute seconds
with three, the CSV with the rows then a total line."""

from __future__ import annotations

import csv
import io

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.principals import Principal
from marketplace.core.errors import InputError

from . import selectors
from .reports import MEASURES

CURRENCY = "credits"
TEXT_COLUMNS = ("key", "label")
# A spreadsheet runs a cell that starts with one of these as a formula; project names and
# labels come from callers, so such a cell is prefixed with a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# -- serializers -------------------------------------------------------------------------------


def _money(**kwargs):
    return serializers.DecimalField(
        max_digits=20, decimal_places=6, coerce_to_string=True, **kwargs
    )


class MeasuresOutput(serializers.Serializer):
    calls = serializers.IntegerField(help_text="Every call, whatever its outcome")
    billed_calls = serializers.IntegerField()
    errors = serializers.IntegerField(help_text="Model errors and timeouts")
    rejected = serializers.IntegerField(help_text="Calls refused by a rate limit or budget")
    compute_seconds = serializers.DecimalField(
        max_digits=20, decimal_places=3, coerce_to_string=True, help_text="Billed seconds"
    )
    compute_cost = _money()
    royalties = _money(help_text="Paid to the models' owners (on /earnings: what you earned)")
    total = _money(help_text="compute_cost + royalties")


class RowOutput(MeasuresOutput):
    key = serializers.CharField(
        allow_null=True,
        help_text=(
            "model: owner/name; version: owner/name/1.2.3; key: key prefix (null: browser "
            "session); user: username; project: name (null: none); day: YYYY-MM-DD; status"
        ),
    )
    label = serializers.CharField()


class ReportOutput(serializers.Serializer):
    team = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.CharField()
    project = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    totals = MeasuresOutput()
    rows = RowOutput(many=True)


# -- CSV ---------------------------------------------------------------------------------------


class CsvRenderer(BaseRenderer):
    """A report body as CSV: key, label, the measures, then a "Total" line."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*TEXT_COLUMNS, *MEASURES])
        for row in data["rows"]:
            writer.writerow([*(_cell(row[c]) for c in TEXT_COLUMNS), *(row[m] for m in MEASURES)])
        writer.writerow(["", "Total", *(data["totals"][m] for m in MEASURES)])
        return out.getvalue().encode(self.charset)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# -- views -------------------------------------------------------------------------------------


def _parameters(groups: tuple[str, ...], *, project: bool) -> list[OpenApiParameter]:
    params = [
        OpenApiParameter(
            "start",
            OpenApiTypes.DATE,
            description="First day, inclusive (default: the 1st); ignored with a preset range",
        ),
        OpenApiParameter(
            "end",
            OpenApiTypes.DATE,
            description="Last day, inclusive (today); ignored with a preset range",
        ),
        OpenApiParameter(
            "range",
            str,
            enum=[*selectors.PRESETS, selectors.CUSTOM],
            description="A preset instead of start and end",
        ),
        OpenApiParameter(
            "group_by",
            str,
            enum=list(groups),
            description="One row per value; group_by=day lists every day, zero days included",
        ),
        OpenApiParameter(
            "format", str, enum=["json", "csv"], description="Or send Accept: text/csv"
        ),
    ]
    if project:
        params.insert(3, OpenApiParameter("project", str, description="Only this project"))
    return params


class ReportApi(APIView):
    """A GET that answers a report as JSON or CSV, and its errors always as JSON."""

    renderer_classes = [JSONRenderer, CsvRenderer]
    kind = ""

    def perform_content_negotiation(self, request, force=False):
        if request.method == "OPTIONS":
            # The answer is the view's metadata, never a report: JSON, whatever ?format= says
            # (a browser's CORS preflight keeps the query string of the request it checks).
            return (JSONRenderer(), JSONRenderer.media_type)
        try:
            return super().perform_content_negotiation(request, force=force)
        except Http404:
            raise InputError("format: json or csv", fields={"format": ["unknown"]}) from None

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    def answer(self, team, query, report) -> Response:
        rows = [
            {"key": selectors.row_key(report.group_by, row), "label": row.label, **row.as_dict()}
            for row in report.rows
        ]
        body = ReportOutput(
            {
                "team": team.slug,
                "start": query.start,
                "end": query.end,
                "group_by": query.group_by,
                "project": query.project,
                "currency": CURRENCY,
                "totals": report.totals.as_dict(),
                "rows": rows,
            }
        ).data
        response = Response(body)
        if self.request.accepted_renderer.format == "csv":
            name = f"{self.kind}-{team.slug}-{query.start}-{query.end}-by-{query.group_by}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class TeamUsageApi(ReportApi):
    kind = "usage"

    @extend_schema(
        parameters=_parameters(selectors.USAGE_GROUPS, project=True),
        responses={
            (200, "application/json"): ReportOutput,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same, as CSV"),
        },
        summary="What a team's calls cost (showback)",
        description=(
            "Sums of the team's usage records from start to end (UTC days, inclusive), one "
            "row per group. For owners, admins and billing members; keys need billing:read."
        ),
        tags=["billing"],
    )
    def get(self, request, team):
        team_obj = selectors.billing_team_get(Principal.from_request(request), team)
        query = selectors.report_query_from_params(request.query_params)
        report = selectors.team_usage(
            team_obj, query.start, query.end, group_by=query.group_by, project=query.project
        )
        return self.answer(team_obj, query, report)


class TeamEarningsApi(ReportApi):
    kind = "earnings"

    @extend_schema(
        parameters=_parameters(selectors.EARNINGS_GROUPS, project=False),
        responses={
            (200, "application/json"): ReportOutput,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same, as CSV"),
        },
        summary="What callers spent on a team's models; royalties are its earnings",
        description=(
            "Sums of every caller's usage records of the team's models. Never broken down by "
            "the callers' keys, users or projects. Same access as /usage."
        ),
        tags=["billing"],
    )
    def get(self, request, team):
        team_obj = selectors.billing_team_get(Principal.from_request(request), team)
        query = selectors.report_query_from_params(
            request.query_params, groups=selectors.EARNINGS_GROUPS, by_project=False
        )
        report = selectors.owner_earnings(team_obj, query.start, query.end, group_by=query.group_by)
        return self.answer(team_obj, query, report)
