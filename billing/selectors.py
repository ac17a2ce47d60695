"""Reads for showbacks: who may read a team's billing, the report a request asks for, and
the reports behind the usage, earnings and model value pages. Every figure comes from
`reports.usage_report`, the one place that sums usage."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from django.utils import timezone

from marketplace.accounts import policies
from marketplace.accounts.models import Team
from marketplace.accounts.scopes import BILLING_READ
from marketplace.core.errors import AuthorizationError, InputError, NotFoundError

from .metering import price_at
from .reports import Report, ReportRow, usage_report, validate_range

PRESETS = {
    "this_month": "This month",
    "last_month": "Last month",
    "last_30_days": "Last 30 days",
}
CUSTOM = "custom"
# A team's spending, broken down by anything about its own calls.
USAGE_GROUPS = ("model", "version", "key", "user", "project", "day", "status")
# An owner's earnings: never by the callers' keys, users or projects, which are theirs.
EARNINGS_GROUPS = ("model", "version", "day", "status")
MODEL_VALUE_DAYS = 30
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# -- access ------------------------------------------------------------------------------------


def billing_team_get(principal, slug: str) -> Team:
    """The team whose usage or earnings `principal` asks for. To a non-member it does not
    exist (404); a member needs a billing role (owner, admin, billing) and, with a key, the
    billing:read scope (403). A team key reads its own team's billing, and only that."""
    team = Team.objects.filter(slug=slug).first()
    if team is None or not principal.is_member(team):
        raise NotFoundError(f"No team named {slug!r}")
    principal.require_scope(BILLING_READ, "read usage reports")
    if not principal.team_key and not policies.can_read_billing(principal.user, team):
        raise AuthorizationError(
            f"The billing of {team.slug} is for its owners, admins and billing members"
        )
    return team


# -- what a request asks for ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReportQuery:
    start: date
    end: date
    preset: str = CUSTOM
    group_by: str = "model"
    project: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def today() -> date:
    return timezone.now().date()


def preset_range(preset: str, *, on: date) -> tuple[date, date]:
    if preset == "this_month":
        return on.replace(day=1), on
    if preset == "last_month":
        last = on.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if preset == "last_30_days":
        return on - timedelta(days=29), on
    raise InputError(f"range: one of {', '.join((*PRESETS, CUSTOM))}")


def parse_day(params, name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        if not _ISO_DAY.match(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(
            f"{name}: use an ISO date (YYYY-MM-DD), not {raw[:40]!r}",
            fields={name: ["not an ISO date"]},
        ) from None


def report_query_from_params(
    params,
    *,
    groups: tuple[str, ...] = USAGE_GROUPS,
    default_group_by: str = "model",
    by_project: bool = True,
    on: date | None = None,
) -> ReportQuery:
    """`range` (this_month, last_month, last_30_days, custom), `start` and `end` (ISO dates,
    inclusive; default: this month to date), `group_by` and `project` (empty: every
    project). Anything wrong is an InputError naming the parameter."""
    on = on or today()
    preset = (params.get("range") or "").strip()
    if preset and preset != CUSTOM:
        start, end = preset_range(preset, on=on)
    else:
        start, end = parse_day(params, "start"), parse_day(params, "end")
        if start is None and end is None:
            preset = "this_month"
            start, end = preset_range(preset, on=on)
        else:
            preset = CUSTOM
            end = end or on
            start = start or end.replace(day=1)
    validate_range(start, end)
    group_by = (params.get("group_by") or "").strip() or default_group_by
    if group_by not in groups:
        raise InputError(
            f"group_by: one of {', '.join(groups)}", fields={"group_by": ["not a grouping"]}
        )
    project = (params.get("project") or "").strip() or None
    if project is not None and not by_project:
        raise InputError(
            "project: earnings are not broken down by the callers' projects",
            fields={"project": ["not allowed"]},
        )
    if project is not None and len(project) > 64:
        raise InputError("project: at most 64 characters", fields={"project": ["too long"]})
    return ReportQuery(start, end, preset, group_by, project)


def default_query(*, group_by: str = "model", on: date | None = None) -> ReportQuery:
    start, end = preset_range("this_month", on=on or today())
    return ReportQuery(start, end, "this_month", group_by)


# -- reports -------------------------------------------------------------------------------------


def team_usage(
    team: Team, start: date, end: date, group_by: str | None = "model", project=None
) -> Report:
    """What `team` spent; per day, every day of the range has its row."""
    report = usage_report(team=team, start=start, end=end, group_by=group_by, project=project)
    return fill_days(report) if group_by == "day" else report


def owner_earnings(team: Team, start: date, end: date, group_by: str | None = "model") -> Report:
    """What callers spent on `team`'s models; its earnings are the royalties (rows with
    the most first)."""
    if group_by is not None and group_by not in EARNINGS_GROUPS:
        raise InputError(f"group_by: one of {', '.join(EARNINGS_GROUPS)}")
    report = usage_report(owner=team, start=start, end=end, group_by=group_by)
    if group_by == "day":
        return fill_days(report)
    return replace(report, rows=_top(report.rows, len(report.rows), "royalties"))


def top_models(
    team: Team, start: date, end: date, limit: int = 8, project=None, by: str = "calls"
) -> list[ReportRow]:
    """The models a team depends on most: most calls first (or, with by="total", most
    spent), ties by spend, calls and name."""
    rows = usage_report(team=team, start=start, end=end, group_by="model", project=project).rows
    return _top(rows, limit, by)


def top_earning_models(team: Team, start: date, end: date, limit: int = 8) -> list[ReportRow]:
    rows = usage_report(owner=team, start=start, end=end, group_by="model").rows
    return _top(rows, limit, "royalties")


def compute_price_now(hardware_class: str) -> str:
    """The price per second of compute on `hardware_class` now, as written, without trailing
    zeros ("0.000125", not "0.000125000")."""
    return format(price_at(hardware_class, timezone.now()).normalize(), "f")


def model_value(model, start: date | None = None, end: date | None = None) -> Report:
    """Calls of one model and the royalties they earned its owner, per day (every day of
    the range; default: the last 30 days)."""
    end = end or today()
    start = start or end - timedelta(days=MODEL_VALUE_DAYS - 1)
    return fill_days(
        usage_report(owner=model.owner, model=model, start=start, end=end, group_by="day")
    )


def _top(rows: list[ReportRow], limit: int, by: str) -> list[ReportRow]:
    others = [m for m in ("calls", "total") if m != by]
    return sorted(rows, key=lambda r: (*(-getattr(r, m) for m in (by, *others)), r.label))[:limit]


def fill_days(report: Report) -> Report:
    """The same report with a zero row for each day of its range that had no calls, so a
    per-day series is continuous."""
    by_day = {row.key[0]: row for row in report.rows}
    rows = []
    day = report.start
    while day <= report.end:
        rows.append(by_day.get(day) or ReportRow(key=(day,), label=day.isoformat()))
        day += timedelta(days=1)
    return replace(report, rows=rows)


def row_key(group_by: str | None, row: ReportRow) -> str | None:
    """A row's identity as the API shows it: "owner/name", "owner/name/1.0.0", a key
    prefix, a username, a project, an ISO day or a status; None for "no key", "no project",
    "no user"."""
    if not group_by:
        return None
    if group_by == "version":
        return "/".join(str(part) for part in row.key)
    value = row.key[0] if row.key else None
    if group_by == "user":
        return row.label if value else None
    if group_by == "day":
        return value.isoformat()
    return str(value) if value else None


# -- what the pages show -------------------------------------------------------------------------


@dataclass
class UsageOverview:
    query: ReportQuery
    per_day: Report
    top_models: list[ReportRow]
    breakdown: Report
    projects: list[str] = field(default_factory=list)

    @property
    def totals(self) -> ReportRow:
        return self.per_day.totals


def usage_overview(team: Team, query: ReportQuery) -> UsageOverview:
    """Everything the usage page shows for one query."""
    args = {"start": query.start, "end": query.end}
    per_day = team_usage(team, group_by="day", project=query.project, **args)
    breakdown = (
        per_day
        if query.group_by == "day"
        else team_usage(team, group_by=query.group_by, project=query.project, **args)
    )
    projects = sorted(
        row.key[0] for row in team_usage(team, group_by="project", **args).rows if row.key[0]
    )
    return UsageOverview(
        query=query,
        per_day=per_day,
        top_models=top_models(team, limit=8, project=query.project, **args),
        breakdown=breakdown,
        projects=projects,
    )


@dataclass
class EarningsOverview:
    query: ReportQuery
    per_day: Report
    top_models: list[ReportRow]
    breakdown: Report

    @property
    def totals(self) -> ReportRow:
        return self.per_day.totals


def earnings_overview(team: Team, query: ReportQuery) -> EarningsOverview:
    args = {"start": query.start, "end": query.end}
    per_day = owner_earnings(team, group_by="day", **args)
    breakdown = (
        per_day
        if query.group_by == "day"
        else owner_earnings(team, group_by=query.group_by, **args)
    )
    return EarningsOverview(
        query=query,
        per_day=per_day,
        top_models=top_earning_models(team, limit=8, **args),
        breakdown=breakdown,
    )
