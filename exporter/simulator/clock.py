"""Simulated-time arithmetic: whole credits burnt over an interval, and the dates APIs write."""

from __future__ import annotations

import calendar
import math
from datetime import UTC, date, datetime
from datetime import time as dtime

DAY = 86400.0


def units(rate_per_day: float, anchor: float, t0: float, t1: float) -> int:
    """Whole credits burnt in [t0, t1) at ``rate_per_day`` counted from ``anchor``.

    Summing over adjacent intervals gives exactly the total over their union, so lazily settling
    at arbitrary moments never loses or invents a credit.
    """
    if rate_per_day <= 0 or t1 <= t0:
        return 0
    return math.floor(rate_per_day * (t1 - anchor) / DAY) - math.floor(
        rate_per_day * (t0 - anchor) / DAY
    )


def iso_z(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def utc_midnight(day: date) -> float:
    return datetime.combine(day, dtime(0), UTC).timestamp()
