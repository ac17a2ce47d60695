"""Daily rollups: the sums of a closed day's usage records of a team, so long reports read a
few rows per day instead of every call.

A day is rolled up for every team at once; each (team, day) marker stores the cutoff its
rollup rows cover. Reports read a day from rollups only while no record of it was created
after that cutoff (a call that finished late), so a report equals the sum of the records,
always."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

# Records are written in short transactions; one created this long ago has committed.
CUTOFF_MARGIN = timedelta(minutes=5)
# Calls finish (or are reaped) within this of their start: a day is closed after it.
CLOSED_AFTER = timedelta(hours=6)
MAX_DAYS_PER_RUN = 60
BACKFILL_DAYS = 45

GROUP_COLUMNS = (
    "model_id",
    "model_owner_id",
    "model_name",
    "version_label",
    "api_key_id",
    "key_prefix",
    "user_id",
    "project",
    "status",
)


def rollup_closed_days(*, now=None, since=None, max_days: int = MAX_DAYS_PER_RUN) -> int:
    """Roll up, for every team at once, the closed days since `since` (default: the last
    BACKFILL_DAYS days) that have records and no rollup yet. Returns how many days."""
    now = now or timezone.now()
    last_closed_day = (now - CLOSED_AFTER).date() - timedelta(days=1)
    since = since or last_closed_day - timedelta(days=BACKFILL_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT candidate::date
            FROM generate_series(%s::date, %s::date, interval '1 day') AS candidate
            WHERE NOT EXISTS (
                SELECT 1 FROM billing_rolledupday d WHERE d.day = candidate::date
            ) AND EXISTS (
                SELECT 1 FROM billing_usagerecord r WHERE r.day = candidate::date
            )
            ORDER BY candidate LIMIT %s
            """,
            [since, last_closed_day, max_days],
        )
        days = [day for (day,) in cursor.fetchall()]
    for day in days:
        rollup_whole_day(day=day, cutoff=now - CUTOFF_MARGIN)
    return len(days)


def rollup_whole_day(*, day, cutoff) -> int:
    """(Re)compute one day's rollup rows and markers for every team in two statements.
    Returns the records covered."""
    columns = ", ".join(GROUP_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM billing_usagerollup WHERE day = %s", [day])
        cursor.execute("DELETE FROM billing_rolledupday WHERE day = %s", [day])
        cursor.execute(
            f"""
            INSERT INTO billing_usagerollup (
                team_id, day, {columns}, calls, billed_calls, duration_seconds,
                billed_seconds, compute_cost, royalty, total
            )
            SELECT team_id, day, {columns}, count(*), count(*) FILTER (WHERE billed),
                   sum(duration_seconds), sum(billed_seconds), sum(compute_cost),
                   sum(royalty), sum(total)
            FROM billing_usagerecord
            WHERE day = %s AND created_at <= %s
            GROUP BY team_id, day, {columns}
            """,  # noqa: S608 - column names are constants
            [day, cutoff],
        )
        cursor.execute(
            """
            INSERT INTO billing_rolledupday (team_id, day, records, rolled_up_at)
            SELECT team_id, day, count(*), %s FROM billing_usagerecord
            WHERE day = %s AND created_at <= %s GROUP BY team_id, day
            RETURNING records
            """,
            [cutoff, day, cutoff],
        )
        return sum(records for (records,) in cursor.fetchall())
