"""Usage reports: sums of usage records over a date range, grouped by one dimension.

Days that have been rolled up are read from their rollup rows plus the records created after
the rollup's cutoff; other days from the records. Either way a figure is the exact sum of
the records it covers (Decimal, six places), and the tests check it against an independent
sum."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection

from marketplace.accounts.models import User
from marketplace.core.errors import InputError

from .models import ERROR_STATUSES

DIMENSIONS = {
    "model": ("model_name",),
    "version": ("model_name", "version_label"),
    "key": ("key_prefix",),
    "user": ("user_id",),
    "project": ("project",),
    "day": ("day",),
    "status": ("status",),
}
MEASURES = (
    "calls",
    "billed_calls",
    "errors",
    "rejected",
    "compute_seconds",
    "compute_cost",
    "royalties",
    "total",
)
MAX_DAYS = 3660
# Rolled-up days of the record's team (the platform report joins on it).
ROLLED_UP_JOIN = "LEFT JOIN billing_rolledupday d ON d.team_id = r.team_id AND d.day = r.day"


@dataclass
class ReportRow:
    key: tuple = ()
    label: str = ""
    calls: int = 0
    billed_calls: int = 0
    errors: int = 0
    rejected: int = 0
    compute_seconds: Decimal = Decimal("0.000")
    compute_cost: Decimal = Decimal("0.000000")
    royalties: Decimal = Decimal("0.000000")
    total: Decimal = Decimal("0.000000")

    def add(self, other: ReportRow) -> None:
        for name in MEASURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in MEASURES}


@dataclass
class Report:
    start: date
    end: date
    group_by: str | None
    totals: ReportRow
    rows: list[ReportRow] = field(default_factory=list)


def validate_range(start: date, end: date) -> None:
    if end < start:
        raise InputError("end: must not be before start")
    if (end - start).days > MAX_DAYS:
        raise InputError(f"a report covers at most {MAX_DAYS} days")


def usage_report(
    *,
    start: date,
    end: date,
    team=None,
    owner=None,
    group_by: str | None = None,
    project: str | None = None,
    model=None,
    use_rollups: bool = True,
) -> Report:
    """What `team` spent (or, with `owner`, what callers spent on `owner`'s models: its
    earnings are the royalties) from `start` to `end` inclusive."""
    if (team is None) == (owner is None):
        raise ValueError("a report is of a team or of an owner")
    if group_by is not None and group_by not in DIMENSIONS:
        raise InputError(f"group_by: one of {', '.join(DIMENSIONS)}")
    validate_range(start, end)
    dims = DIMENSIONS[group_by] if group_by else ()
    scope_column = "team_id" if team is not None else "model_owner_id"
    filters, params = [f"{{t}}.{scope_column} = %s"], [(team or owner).pk]
    if project is not None:
        filters.append("{t}.project = %s")
        params.append(project)
    if model is not None:
        filters.append("{t}.model_id = %s")
        params.append(model.pk)
    # A team's rolled-up days with no record written after their rollup are read from the
    # rollup rows; every other day from its records. Owner reports span every caller team's
    # rollups, so they read records (indexed by owner and day).
    clean = clean_rolled_up_days(team, start, end) if team is not None and use_rollups else []
    if clean:
        skip = set(clean)
        record_days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        record_days = [d for d in record_days if d not in skip]
        records_day, records_day_params = "r.day = ANY(%s)", [record_days]
    else:
        records_day, records_day_params = "r.day BETWEEN %s AND %s", [start, end]
    where_records = " AND ".join([*(f.format(t="r") for f in filters), records_day])
    where_rollups = " AND ".join([*(f.format(t="u") for f in filters), "u.day = ANY(%s)"])
    errors = ", ".join(f"'{s}'" for s in ERROR_STATUSES)
    dim_r = "".join(f"r.{d}, " for d in dims)
    dim_u = "".join(f"u.{d}, " for d in dims)
    dim_s = ", ".join(dims)
    records = f"""
        SELECT {dim_r}1 AS calls, CASE WHEN r.billed THEN 1 ELSE 0 END AS billed_calls,
               CASE WHEN r.status IN ({errors}) THEN 1 ELSE 0 END AS errors,
               CASE WHEN r.status = 'rejected' THEN 1 ELSE 0 END AS rejected,
               r.billed_seconds, r.compute_cost, r.royalty, r.total
        FROM billing_usagerecord r WHERE {where_records}
    """  # noqa: S608 - only constants are interpolated
    rollups = f"""
        UNION ALL
        SELECT {dim_u}u.calls, u.billed_calls,
               CASE WHEN u.status IN ({errors}) THEN u.calls ELSE 0 END,
               CASE WHEN u.status = 'rejected' THEN u.calls ELSE 0 END,
               u.billed_seconds, u.compute_cost, u.royalty, u.total
        FROM billing_usagerollup u WHERE {where_rollups}
    """  # noqa: S608
    sql = f"""
        SELECT {dim_s + ", " if dims else ""}sum(calls), sum(billed_calls), sum(errors),
               sum(rejected), sum(billed_seconds), sum(compute_cost), sum(royalty), sum(total)
        FROM ({records} {rollups if clean else ""}) AS src
        {"GROUP BY " + dim_s if dims else ""}
    """  # noqa: S608
    all_params = params + records_day_params + ([*params, clean] if clean else [])
    with connection.cursor() as cursor:
        cursor.execute(sql, all_params)
        fetched = cursor.fetchall()
    rows = [report_row(values[: len(dims)], values[len(dims) :]) for values in fetched]
    rows = [row for row in rows if row.calls]
    totals = ReportRow(label="Total")
    for row in rows:
        totals.add(row)
    _label(rows, group_by)
    rows.sort(key=lambda r: (-r.total, -r.calls, r.label))
    if group_by == "day":
        rows.sort(key=lambda r: r.key)
    return Report(start, end, group_by, totals, rows)


def report_row(key, measures) -> ReportRow:
    """A row from a grouping key and the eight summed measures, in MEASURES order."""
    calls, billed, errors, rejected, seconds, compute, royalty, total = measures
    return ReportRow(
        key=tuple(key),
        calls=int(calls or 0),
        billed_calls=int(billed or 0),
        errors=int(errors or 0),
        rejected=int(rejected or 0),
        compute_seconds=(seconds or Decimal(0)).quantize(Decimal("0.001")),
        compute_cost=(compute or Decimal(0)).quantize(Decimal("0.000001")),
        royalties=(royalty or Decimal(0)).quantize(Decimal("0.000001")),
        total=(total or Decimal(0)).quantize(Decimal("0.000001")),
    )


def _label(rows: list[ReportRow], group_by: str | None) -> None:
    if group_by == "user":
        names = dict(
            User.objects.filter(pk__in=[r.key[0] for r in rows if r.key[0]]).values_list(
                "pk", "username"
            )
        )
        for row in rows:
            row.label = names.get(row.key[0], "(deleted user)") if row.key[0] else "(none)"
        return
    for row in rows:
        if group_by == "day":
            row.label = row.key[0].isoformat()
        elif group_by == "version":
            row.label = f"{row.key[0]} {row.key[1]}"
        elif group_by in ("key", "project"):
            row.label = row.key[0] or ("(session)" if group_by == "key" else "(none)")
        elif row.key:
            row.label = str(row.key[0])


def clean_rolled_up_days(team, start: date, end: date) -> list[date]:
    """The team's days in the range whose rollup covers every record of the day: rolled up,
    and no record created after the rollup's cutoff (a call that finished late). One index
    probe per rolled-up day on (team, day, created_at)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT d.day FROM billing_rolledupday d
            WHERE d.team_id = %s AND d.day BETWEEN %s AND %s AND NOT EXISTS (
                SELECT 1 FROM billing_usagerecord r
                WHERE r.team_id = d.team_id AND r.day = d.day AND r.created_at > d.rolled_up_at
            )
            ORDER BY d.day
            """,
            [team.pk, start, end],
        )
        return [day for (day,) in cursor.fetchall()]
