"""Metering: the one usage record of each call, priced when it is written.

`record_invocation` runs inside the transaction that gives an invocation its final status,
so a call has its record exactly when it has a final status: a retry or a second finisher
changes nothing, and a crash before the commit leaves neither (the reaper then finishes the
call, which writes the record). Calls refused before they became invocations (rate limits,
budget caps) get theirs from `record_rejection`."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.db import connection

from marketplace.accounts.services import ANONYMOUS_NAMESPACE
from marketplace.core.change_feed import TableCache
from marketplace.core.instances import unsaved
from marketplace.core.postgresql.params import statement_params

from .budgets.tasks import thresholds_crossed
from .models import ComputePrice, UsageRecord, UsageStatus

logger = logging.getLogger(__name__)

MICRO = Decimal("0.000001")
MILLI = Decimal("0.001")
ZERO = Decimal(0)


_prices_by_class = TableCache("prices", {"billing_computeprice"})


def price_at(hardware_class: str, when: datetime) -> Decimal:
    """The per-second price in force for a hardware class at a moment (zero before the
    first price is set). A class's whole schedule may be remembered (core/change_feed.py):
    a price that takes effect later is in it already."""
    schedule = _prices_by_class.get(
        hardware_class,
        lambda: tuple(
            ComputePrice.objects.filter(hardware_class=hardware_class)
            .order_by("-effective_from")
            .values_list("effective_from", "price_per_second")
        ),
    )
    return next((price for start, price in schedule if start <= when), ZERO)


def billed_seconds(duration: Decimal) -> Decimal:
    """Duration rounded up to the configured increment, at least the configured minimum."""
    increment = settings.BILLING_SECONDS_INCREMENT
    rounded = (duration / increment).to_integral_value(rounding=ROUND_CEILING) * increment
    return max(rounded, settings.BILLING_MINIMUM_SECONDS).quantize(MILLI)


def is_billed(status: str) -> bool:
    if status == UsageStatus.SUCCEEDED:
        return True
    if status in (UsageStatus.FAILED, UsageStatus.TIMEOUT):
        return settings.BILLING_CHARGE_FAILED_CALLS
    return False


def month_of(day: date) -> date:
    return day.replace(day=1)


@dataclass(frozen=True)
class Charge:
    duration: Decimal
    billed_seconds: Decimal
    price_per_second: Decimal
    billed: bool
    compute_cost: Decimal
    royalty: Decimal

    @property
    def total(self) -> Decimal:
        return self.compute_cost + self.royalty


def charge(
    *, status: str, started_at, ended_at, hardware_class: str, royalty_per_call: Decimal
) -> Charge:
    # From whole microseconds: a float of seconds would round 1 ms up to 2 ms.
    microseconds = max((ended_at - started_at) // timedelta(microseconds=1), 0)
    duration = (Decimal(microseconds) / 1_000_000).quantize(MILLI, rounding=ROUND_CEILING)
    price = price_at(hardware_class, started_at)
    billed = is_billed(status)
    seconds = billed_seconds(duration) if billed else ZERO.quantize(MILLI)
    compute = (seconds * price).quantize(MICRO, rounding=ROUND_HALF_EVEN) if billed else ZERO
    royalty = royalty_per_call.quantize(MICRO) if billed else ZERO
    return Charge(
        duration, seconds, price, billed, compute.quantize(MICRO), royalty.quantize(MICRO)
    )


def usage_status(invocation_status: str, error_type: str) -> str:
    if error_type in ("RateLimitError", "PaymentRequiredError"):
        return UsageStatus.REJECTED
    return invocation_status


def is_anonymous_try(invocation) -> bool:
    """A visitor's call without an account: billed to no one, so it has no usage record.
    Every other call has a user (a session, a personal key) or a key (a team key)."""
    return (
        invocation.caller_user_id is None
        and invocation.api_key_id is None
        and invocation.caller_team.slug == ANONYMOUS_NAMESPACE
    )


def usage_of(invocation) -> UsageRecord | None:
    """The usage record of an invocation that has just reached its final status (None with
    metering off); `usage_write` or `record_invocation` store it."""
    if not settings.BILLING_METERING or is_anonymous_try(invocation):
        return None
    error_type = ((invocation.error or {}).get("error_type") or "")[:64]
    status = usage_status(invocation.status, error_type)
    version = invocation.version
    started_at = invocation.started_at or invocation.created_at
    cost = charge(
        status=status,
        started_at=started_at,
        ended_at=invocation.finished_at,
        hardware_class=invocation.hardware_class,
        royalty_per_call=version.royalty_per_call if version is not None else ZERO,
    )
    model = invocation.model
    key = invocation.api_key
    return unsaved(
        UsageRecord,
        request_id=invocation.pk,
        team_id=invocation.caller_team_id,
        user_id=invocation.caller_user_id,
        api_key_id=invocation.api_key_id,
        key_prefix=key.prefix if key is not None else "",
        project=invocation.project,
        model_id=invocation.model_id,
        model_owner_id=model.owner_id,
        model_name=f"{model.owner.slug}/{model.slug}",
        version_id=invocation.version_id,
        version_label=invocation.version_label,
        status=status,
        error_type=error_type,
        started_at=started_at,
        ended_at=invocation.finished_at,
        duration_seconds=cost.duration,
        billed_seconds=cost.billed_seconds,
        bytes_in=invocation.input_bytes,
        bytes_out=invocation.output_bytes,
        hardware_class=invocation.hardware_class,
        price_per_second=cost.price_per_second,
        billed=cost.billed,
        compute_cost=cost.compute_cost,
        royalty=cost.royalty,
        total=cost.total,
        day=started_at.date(),
    )


@dataclass(frozen=True)
class UsageWrite:
    """A usage record as common table expressions (`usage`, then `spend`) that insert it
    once and add it to the month's totals for each row of the CTE named by `after`, so
    that the statement finishing a call records its usage in the same round trip, in one
    transaction. Select `spent_sql` from it and pass what it returns to `recorded`."""

    record: UsageRecord
    sql: str
    params: list
    spent_sql = "(SELECT json_agg(json_build_array(project, total::text)) FROM spend)"

    def recorded(self, spent: list | None) -> None:
        """After the statement: queue the budget alerts the record crossed (nothing when it
        was recorded before, as `spent` is then empty)."""
        if not spent:
            logger.info("usage of %s was already recorded", self.record.request_id)
            return
        if self.record.total > 0:
            thresholds_crossed(
                self.record,
                month=month_of(self.record.day),
                spent={project: Decimal(total) for project, total in spent},
            )


def usage_write(invocation, *, after: str) -> UsageWrite | None:
    """The usage of `invocation` (see `usage_of`) as a UsageWrite run for each row of the
    CTE `after`; None with metering off."""
    record = usage_of(invocation)
    if record is None:
        return None
    sql, params = _usage_ctes(record, after)
    return UsageWrite(record, sql, params)


def record_invocation(invocation) -> UsageRecord | None:
    """Store the usage record of an invocation that has just reached its final status (in
    the transaction that set it)."""
    record = usage_of(invocation)
    if record is not None:
        _insert(record)
    return record


def record_rejection(
    *,
    request_id: str,
    principal,
    team,
    model,
    target,
    project: str,
    error_type: str,
    input_bytes: int,
    at: datetime,
) -> UsageRecord | None:
    """The record of a call refused before it ran (rate limit, concurrency, budget cap):
    never billed, but counted, so a team sees what its limits turned away."""
    if not settings.BILLING_METERING:
        return None
    key = principal.key
    record = UsageRecord(
        request_id=request_id,
        team=team,
        user=principal.user,
        api_key=key,
        key_prefix=key.prefix if key is not None else "",
        project=project[:64],
        model=model,
        model_owner_id=model.owner_id,
        model_name=f"{model.owner.slug}/{model.slug}",
        version=target.version,
        version_label=target.label,
        status=UsageStatus.REJECTED,
        error_type=error_type,
        started_at=at,
        ended_at=at,
        duration_seconds=ZERO.quantize(MILLI),
        billed_seconds=ZERO.quantize(MILLI),
        bytes_in=input_bytes,
        bytes_out=0,
        hardware_class=model.hardware_class,
        price_per_second=ZERO,
        billed=False,
        compute_cost=ZERO,
        royalty=ZERO,
        total=ZERO,
        day=at.date(),
    )
    _insert(record)  # one statement, atomic by itself
    return record


@functools.cache
def _usage_columns() -> tuple[str, str]:
    """The usage record's columns, and a typed placeholder for each (a SELECT list does not
    take its types from the INSERT's columns)."""
    fields = UsageRecord._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(f"%s::{f.cast_db_type(connection)}" for f in fields)
    return columns, placeholders


def _usage_ctes(record: UsageRecord, after: str) -> tuple[str, list]:
    columns, placeholders = _usage_columns()
    values = statement_params(record, connection)
    projects = [""] + ([record.project] if record.project else [])
    rows = ", ".join(["(%s::bigint, %s::text, %s::date, %s::numeric)"] * len(projects))
    month = month_of(record.day)
    sql = f"""
usage AS (
    INSERT INTO billing_usagerecord ({columns})
    SELECT {placeholders} FROM {after}
    ON CONFLICT (request_id) DO NOTHING RETURNING request_id
),
spend AS (
    INSERT INTO billing_monthlyspend (team_id, project, month, total, calls)
    SELECT v.team_id, v.project, v.month, v.total, 1
    FROM usage, (VALUES {rows}) AS v (team_id, project, month, total)
    ON CONFLICT (team_id, project, month) DO UPDATE SET
        total = billing_monthlyspend.total + EXCLUDED.total,
        calls = billing_monthlyspend.calls + 1
    RETURNING project, total
)"""  # noqa: S608 - only column names and placeholders are formatted in
    params = values + [v for p in projects for v in (record.team_id, p, month, record.total)]
    return sql, params


def _insert(record: UsageRecord) -> None:
    """Insert the record, once, and add it to the month's running totals."""
    ctes, params = _usage_ctes(record, "(SELECT 1) AS one")
    write = UsageWrite(record, ctes, params)
    with connection.prepared_cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT {write.spent_sql}", params)
        spent = cursor.fetchone()[0]
    write.recorded(spent)
