"""An event as plain data (the API's item, the JSON export's item) and the CSV and JSON
downloads, streamed so a long trail never has to fit in memory."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from .models import AuditEvent

CSV_COLUMNS = (
    "at",
    "action",
    "actor",
    "via",
    "key_prefix",
    "ip",
    "team",
    "target_type",
    "target_id",
    "target",
    "before",
    "after",
    "request_id",
    "user_agent",
    "id",
)
# A spreadsheet runs a cell starting with one of these as a formula; user names tried at
# log-in and other text in the trail come from outside, so such cells are quoted.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_CHUNK = 2000


def event_record(event: AuditEvent) -> dict:
    return {
        "id": str(event.id),
        "at": event.at.isoformat(),
        "action": event.action,
        "actor": event.actor_name or None,
        "via": event.via,
        "key_prefix": event.key_prefix or None,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "team": event.team_slug or None,
        "target": {
            "type": event.target_type,
            "id": event.target_id,
            "name": event.target_repr,
        },
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id or None,
    }


def csv_row(event: AuditEvent) -> list[str]:
    record = event_record(event)
    values = {
        **record,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target": event.target_repr,
        "before": _json(event.before),
        "after": _json(event.after),
    }
    return [_cell(values[column]) for column in CSV_COLUMNS]


def _json(value) -> str:
    return "" if value is None else json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        yield writer.writerow(csv_row(event))


def _json_chunks(events: Iterable[AuditEvent]) -> Iterator[str]:
    yield "["
    first = True
    for event in events:
        yield ("" if first else ",\n") + json.dumps(event_record(event), cls=DjangoJSONEncoder)
        first = False
    yield "]\n"


def export_response(events: QuerySet[AuditEvent], fmt: str, *, name: str):
    """The filtered events as a download: fmt is "csv" or "json"."""
    rows = events.iterator(chunk_size=EXPORT_CHUNK)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_json_chunks(rows), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-{name}-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
