"""How billing figures read on a page and in a chart: credits with thousands separators and
every significant place up to six (never rounded away: a showback is exact), counts with
thousands separators, seconds with up to three places. The API sends exact strings instead."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _grouped(value: Decimal, places: int, min_places: int) -> str:
    text = f"{value.quantize(Decimal(1).scaleb(-places)):,.{places}f}"
    if places > min_places:
        whole, _, fraction = text.partition(".")
        fraction = fraction.rstrip("0").ljust(min_places, "0")
        text = f"{whole}.{fraction}" if fraction else whole
    return text


def format_credits(value) -> str:
    """1234.5 -> "1,234.50"; 0.000123 -> "0.000123"; at least two places, at most six."""
    return _grouped(Decimal(value or 0), 6, 2)


def format_count(value) -> str:
    return f"{int(value or 0):,}"


def format_seconds(value) -> str:
    return _grouped(Decimal(value or 0), 3, 0)


def format_day(day: date) -> str:
    """A short, locale-independent day label: "May 3"."""
    return f"{MONTHS[day.month - 1]} {day.day}"
