"""Reads of the catalogue."""

from __future__ import annotations


def home_sections(*, user) -> dict:
    """What the home page shows: tasks with counts, trending and newest models visible to
    `user`. The catalogue has no models until publishing lands, so these are empty."""
    return {"tasks": [], "trending_models": [], "newest_models": []}
