"""Daily consumption history, for the providers that report one (TheirStack, Windsurf): which day
a bucket's date-time names, the days a lookback asks about, the trailing windows, and buckets
dated in the future.

A :class:`DailyHistory` starts with every day of the lookback at 0 (a day the answer leaves out
consumed nothing), adds each bucket to its day, and turns into the :class:`~exporter.model.Reading`
the store publishes: per pool, the ``1d``/``7d``/``30d`` windows (calendar days, today included)
and the raw day history behind the consumed-credits counter. A bucket dated later than tomorrow
is ignored (and noted), so it can never become the baseline of that counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from ..model import Reading
from ..redaction import quote
from .base import bad

WINDOWS = (("1d", 1), ("7d", 7), ("30d", 30))
#: Future days named in the note about ignored buckets (the rest are counted).
NOTE_DAYS = 3


def bucket_day(value: Any, tz: tzinfo, where: str) -> date:
    """The day, in the timezone ``tz``, that a daily bucket's start names.

    Servers write the start of a day either as the instant of its midnight in ``tz``
    (``2026-03-10T00:00:00-05:00`` or ``2026-03-10T05:00:00Z``) or as the date wrongly labelled
    UTC (``2026-03-10T00:00:00Z``). A start written at midnight that is not midnight in ``tz``
    is the second form: its own date is the day. Any other start is an instant: the day is its
    date in ``tz`` (which also covers days that do not begin at midnight, where a DST change
    falls at 00:00). A start without an offset, or a plain date, is local.
    """
    if not isinstance(value, str):
        raise bad(f"{where} should be a date-time string")
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if dt.tzinfo is None:
            return dt.date()
        local = dt.astimezone(tz)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out
        raise bad(f'{where} is not a valid date-time ("{quote(text)}")') from None
    if dt.time() == time(0) and local.time() != time(0):
        return dt.date()
    return local.date()


class DailyHistory:
    """Credits consumed per day and pool over the ``lookback`` days that end ``today``."""

    def __init__(self, pools: tuple[str, ...], today: date, lookback: int) -> None:
        self.today = today
        self.lookback = lookback
        first = today - timedelta(days=lookback - 1)
        days = [(first + timedelta(days=n)).isoformat() for n in range(lookback)]
        self.daily: dict[str, dict[str, float]] = {pool: dict.fromkeys(days, 0.0) for pool in pools}
        self.future: set[date] = set()

    def add(self, day: date, values: Mapping[str, float]) -> None:
        """Count ``values`` (pool -> credits) on ``day``; two buckets of one day add up (e.g.
        around a DST change). A day later than tomorrow is set aside (:attr:`future`)."""
        if (day - self.today).days > 1:
            self.future.add(day)
            return
        key = day.isoformat()
        for pool, value in values.items():
            days = self.daily[pool]
            days[key] = days.get(key, 0.0) + value

    def windows(self, pool: str) -> dict[str, float]:
        """Window -> credits consumed in its calendar days up to today (windows longer than the
        lookback are left out)."""
        last = self.today.isoformat()
        out = {}
        for label, span in WINDOWS:
            if span > self.lookback:
                continue
            first = (self.today - timedelta(days=span - 1)).isoformat()
            out[label] = sum(v for k, v in self.daily[pool].items() if first <= k <= last)
        return out

    def reading(self, zone: str) -> Reading:
        """The windows and day history of every pool; a note names ignored future days."""
        notes = {}
        if self.future:
            shown = ", ".join(d.isoformat() for d in sorted(self.future)[:NOTE_DAYS])
            extra = len(self.future) - NOTE_DAYS
            more = f" and {extra} more" if extra > 0 else ""
            notes["consumption"] = (
                f"ignored day buckets dated after tomorrow in {zone}: {shown}{more}"
            )
        return Reading(
            consumption={pool: self.windows(pool) for pool in self.daily},
            daily_consumption=self.daily,
            notes=notes,
        )
