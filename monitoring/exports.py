"""The platform report as data: the JSON body of /v1/platform/usage and the CSV the report
page and that endpoint download. Both carry the same exact figures (money as strings with
six places, compute seconds with three), the CSV with the rows then a total line, written by
billing's CSV renderer so every usage export reads the same."""

from __future__ import annotations

from rest_framework import serializers

from billing.api import CsvRenderer, MeasuresOutput
from billing.reports import Report

from .selectors import platform_row_key

CURRENCY = "credits"


class PlatformRowOutput(MeasuresOutput):
    key = serializers.CharField(
        allow_null=True, help_text="team: its slug; model: owner/name; day: YYYY-MM-DD"
    )
    label = serializers.CharField()


class PlatformReportOutput(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    totals = MeasuresOutput()
    rows = PlatformRowOutput(many=True)


def platform_body(report: Report) -> dict:
    rows = [
        {"key": platform_row_key(report.group_by, row), "label": row.label, **row.as_dict()}
        for row in report.rows
    ]
    return PlatformReportOutput(
        {
            "start": report.start,
            "end": report.end,
            "group_by": report.group_by,
            "currency": CURRENCY,
            "totals": report.totals.as_dict(),
            "rows": rows,
        }
    ).data


def platform_csv(report: Report) -> bytes:
    return CsvRenderer().render(platform_body(report))


def csv_name(report: Report) -> str:
    return f"platform-usage-{report.start}-{report.end}-by-{report.group_by}.csv"
