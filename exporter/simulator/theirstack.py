"""Simulated TheirStack, under ``/theirstack``: ``GET /v0/billing/credit-balance`` and
``GET /v0/teams/credits_consumption``, Bearer keys, TheirStack's error bodies and RateLimit
headers. API and UI credits burn per day into a 15-minute consumption history, which the
consumption endpoint sums per calendar day in the asked time zone."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from .account import SimAccount
from .api import JSON, Call, Endpoint, Reply, SimulatedApi
from .auth import bearer
from .clock import DAY, iso_z, units, utc_midnight
from .fields import Converter, choice, non_negative, opt_str, to_bool, to_int, to_str

BUCKET = 900
"""Consumption history granularity in seconds: every real UTC offset is a multiple of 15 min."""
MAX_CONSUMPTION_DAYS = 1000

PERIOD_START_FORMS = ("offset", "utc", "local_z")
"""How TheirStack's ``period_start`` writes a local midnight: ``offset`` the local time with its
offset (``...T00:00:00-05:00``; ``Z`` where the offset is 0), ``utc`` the same instant in UTC
(``...T05:00:00Z``), ``local_z`` the local date wrongly labelled UTC (``...T00:00:00Z``)."""


def _consumption_days(value: Any) -> dict[date, tuple[int, int]]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of date -> {{api, ui}}, got {type(value).__name__}")
    out: dict[date, tuple[int, int]] = {}
    for key, counts in value.items():
        day = date.fromisoformat(to_str(key)) if not isinstance(key, date) else key
        if not isinstance(counts, Mapping) or set(counts) - {"api", "ui"}:
            raise ValueError(f'{key}: expected {{"api": int, "ui": int}}')
        out[day] = (to_int(counts.get("api", 0)), to_int(counts.get("ui", 0)))
    return out


@dataclass(kw_only=True)
class TheirStackSimAccount(SimAccount):
    provider: ClassVar[str] = "theirstack"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "api_credits": to_int,
        "ui_credits": to_int,
        "used_api_credits": to_int,
        "used_ui_credits": to_int,
        "earliest_expiration": opt_str,
        "burn_api_per_day": non_negative,
        "burn_ui_per_day": non_negative,
        "consumption_days": _consumption_days,
        "omit_zero_days": to_bool,
        "period_start_form": lambda v: choice(v, PERIOD_START_FORMS),
    }

    api_credits: int = 0
    ui_credits: int = 0
    used_api_credits: int = 0
    used_ui_credits: int = 0
    earliest_expiration: str | None = None
    burn_api_per_day: float = 0.0
    burn_ui_per_day: float = 0.0
    omit_zero_days: bool = False
    """Leave days without consumption out of the consumption answer (the docs do not say)."""
    period_start_form: str = "offset"
    """See :data:`PERIOD_START_FORMS`."""
    buckets: dict[int, list[int]] = field(default_factory=dict)
    """Consumption history: UTC start of a 15-minute bucket -> [api, ui] consumed in it."""

    def set_field(self, name: str, value: Any) -> None:
        if name != "consumption_days":
            setattr(self, name, value)
            return
        for day, (api, ui) in value.items():
            start = int(utc_midnight(day))
            for key in [k for k in self.buckets if start <= k < start + int(DAY)]:
                del self.buckets[key]
            if api or ui:
                # Noon UTC keeps the bucket on the same calendar date from UTC-12 to UTC+11.
                self.buckets[start + int(DAY) // 2] = [api, ui]

    def advance_state(self, t0: float, t1: float) -> None:
        if self.burn_api_per_day <= 0 and self.burn_ui_per_day <= 0:
            return
        start = math.floor(t0 / BUCKET) * BUCKET
        while start < t1:
            s, e = max(t0, start), min(t1, start + BUCKET)
            api = min(units(self.burn_api_per_day, self.burn_anchor, s, e), self.api_credits)
            ui = min(units(self.burn_ui_per_day, self.burn_anchor, s, e), self.ui_credits)
            if api > 0 or ui > 0:
                self.api_credits -= api
                self.used_api_credits += api
                self.ui_credits -= ui
                self.used_ui_credits += ui
                bucket = self.buckets.setdefault(start, [0, 0])
                bucket[0] += api
                bucket[1] += ui
            start += BUCKET

    def daily(self, tz: ZoneInfo, first: date, last: date) -> dict[date, tuple[int, int]]:
        """Consumption per calendar day in ``tz`` for ``first``..``last`` (zero days included)."""
        out: dict[date, list[int]] = {}
        day = first
        while day <= last:
            out[day] = [0, 0]
            day += timedelta(days=1)
        lo = datetime.combine(first, dtime(0), tz).timestamp()
        hi = datetime.combine(last + timedelta(days=1), dtime(0), tz).timestamp()
        for start, (api, ui) in self.buckets.items():
            if lo <= start < hi:
                totals = out[datetime.fromtimestamp(start, tz).date()]
                totals[0] += api
                totals[1] += ui
        return {d: (v[0], v[1]) for d, v in out.items()}

    def snapshot(self) -> dict[str, Any]:
        out = super().snapshot()
        by_day: dict[str, dict[str, int]] = {}
        for start in sorted(self.buckets):
            api, ui = self.buckets[start]
            totals = by_day.setdefault(
                datetime.fromtimestamp(start, UTC).date().isoformat(), {"api": 0, "ui": 0}
            )
            totals["api"] += api
            totals["ui"] += ui
        out["consumption_days"] = by_day
        return out


_TITLES = {
    400: "Bad request",
    402: "Payment required",
    404: "Not found",
    422: "Validation error",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


def _error(status: int, kind: str | None, description: str | None = None) -> JSON:
    if status in (401, 403) or kind in ("missing", "not_bearer", "unknown", "revoked"):
        text = {
            "missing": "Missing Authorization header with a Bearer token",
            "not_bearer": "Missing Authorization header with a Bearer token",
            "revoked": "This API key has been revoked",
        }.get(kind or "", "Invalid API key")
        error: dict[str, Any] = {"code": "E-001", "title": "Not allowed exception"}
        error["description"] = description or text
        return {"request_id": None, "error": error}
    title = _TITLES.get(status, "Error")
    return {
        "request_id": None,
        "error": {"title": title, "description": description or f"{title} (simulated)"},
    }


def _balance(acct: TheirStackSimAccount, _call: Call) -> Reply:
    body: dict[str, Any] = {
        "ui_credits": acct.ui_credits,
        "used_ui_credits": acct.used_ui_credits,
        "api_credits": acct.api_credits,
        "used_api_credits": acct.used_api_credits,
    }
    if acct.earliest_expiration is not None:
        body["earliest_expiration"] = acct.earliest_expiration
    return Reply(body=body)


def _datetime(value: str | None, tz: ZoneInfo) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


def _consumption(acct: TheirStackSimAccount, call: Call) -> Reply:
    query = call.request.query
    tz_name = query.get("timezone") or "UTC"
    try:
        tz = ZoneInfo(tz_name)
    except (KeyError, ValueError, OSError):
        return Reply(422, _error(422, None, f"Invalid timezone: {tz_name[:64]}"))
    try:
        end = _datetime(query.get("end_datetime"), tz)
        start = _datetime(query.get("start_datetime"), tz)
    except ValueError:
        return Reply(422, _error(422, None, "Invalid datetime format"))
    end = end or datetime.fromtimestamp(call.now, tz)
    first = start.date() if start is not None else end.date() - timedelta(days=29)
    last = end.date()
    if first > last:
        return Reply(422, _error(422, None, "start_datetime must be before end_datetime"))
    if (last - first).days >= MAX_CONSUMPTION_DAYS:
        return Reply(422, _error(422, None, "Date range too large"))
    rows = []
    for day, (api, ui) in sorted(acct.daily(tz, first, last).items()):
        if acct.omit_zero_days and not api and not ui:
            continue
        rows.append(
            {
                "period_start": _period_start(day, tz, acct.period_start_form),
                "api_credits_consumed": api,
                "ui_credits_consumed": ui,
            }
        )
    return Reply(body=rows)


def _period_start(day: date, tz: ZoneInfo, form: str) -> str:
    """The start of ``day`` in ``tz`` written in one of :data:`PERIOD_START_FORMS`."""
    midnight = datetime.combine(day, dtime(0), tz)
    if form == "local_z" or not midnight.utcoffset():
        return f"{day.isoformat()}T00:00:00Z"
    if form == "utc":
        return iso_z(midnight.timestamp())
    return midnight.isoformat()


API = SimulatedApi(
    name="theirstack",
    mount="/theirstack",
    account=TheirStackSimAccount,
    endpoints=(
        Endpoint(
            "GET",
            "/v0/billing/credit-balance",
            _balance,
            "api_credits",
            ("api_credits", "ui_credits", "used_api_credits", "used_ui_credits"),
        ),
        Endpoint(
            "GET",
            "/v0/teams/credits_consumption",
            _consumption,
            "api_credits_consumed",
            ("api_credits_consumed", "ui_credits_consumed"),
        ),
    ),
    credential=bearer,
    error=_error,
    advertised_limits=(("per-second", 1, 4),),
    rate_headers=True,
)
