"""Simulated provider APIs: one aiohttp application that plays TheirStack, Windsurf, FullEnrich
and the APIs of the http_json presets.

The `demo` command and the tests talk to it over loopback exactly as the exporter talks to the
real services. Each provider is mounted under its own prefix (see :data:`PROVIDERS`)::

    /theirstack          GET  /v0/billing/credit-balance, GET /v0/teams/credits_consumption
    /windsurf/api/v1     POST /GetTeamCreditBalance, POST /UserPageAnalytics
    /fullenrich/api/v2   GET  /account/credits
    /openrouter/api/v1   GET  /credits                      (Bearer)
    /deepl, /deepl-free  GET  /v2/usage                     (DeepL-Auth-Key; ":fx" keys: free)
    /elevenlabs          GET  /v1/user/subscription         (xi-api-key)
    /hunter/v2           GET  /account                      (?api_key=)
    /twilio              GET  /2010-04-01/Accounts/{sid}/Balance.json   (Basic sid:token)
    /deepseek            GET  /user/balance                 (Bearer)

Accounts are keyed by their (fake) API key. Their state is set with :meth:`Simulator.add_account`
and :meth:`Simulator.update`, or over HTTP under ``/_sim/`` from another process. Besides the
provider's own fields, every account takes the common misbehaviour switches: ``latency``,
``fail``, ``paths_fail``, ``revoked``, ``malformed`` (see :data:`MALFORMED_MODES`),
``rate_limit_per_second`` and ``rate_limit_per_minute``.

Time is simulated: the clock is the real (or injected) clock plus an offset that
:meth:`Simulator.advance` moves forward. Balances burn lazily from the time elapsed since an
account was last looked at, so no background task runs and ``advance(86400)`` rolls days over.

Adding a provider: write an :class:`AccountState` subclass (fields with converters), its endpoint
handlers (state + :class:`Call` -> :class:`Reply`), a credential extractor and an error-body
function, and register a :class:`Provider` in :data:`PROVIDERS`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import calendar
import contextlib
import copy
import hashlib
import json
import math
import random
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any, ClassVar, Self
from zoneinfo import ZoneInfo

from aiohttp import web

__all__ = [
    "DEMO_ACCOUNTS",
    "MALFORMED_MODES",
    "PROVIDERS",
    "Simulator",
    "SimulatorThread",
    "main",
]

DAY = 86400.0
BUCKET = 900
"""Consumption history granularity in seconds: every real UTC offset is a multiple of 15 min."""
TRICKLE_SECONDS = 60.0
TRICKLE_INTERVAL = 1.0
HUGE_BODY_BYTES = 2 * 1024 * 1024
MAX_CONSUMPTION_DAYS = 1000

MALFORMED_MODES: tuple[str, ...] = (
    "html",  # 200 text/html error page (a proxy's or CDN's)
    "invalid_json",  # 200 application/json, truncated JSON
    "wrong_shape",  # an array where an object belongs, or the reverse
    "missing_field",  # the endpoint's key field is absent
    "string_number",  # numbers sent as strings ("5000")
    "null_field",  # the endpoint's key field is null
    "negative",  # numeric fields negative
    "absurd",  # numeric fields absurdly large (1e18)
    "huge_body",  # valid JSON padded past 2 MiB
    "trickle",  # headers, then one byte a second for up to 60 s
    "reset",  # headers and half the body, then the connection is dropped
)

JSON = Any

ANALYTICS_SHAPES = ("current", "legacy")
PERIOD_START_FORMS = ("offset", "utc", "local_z")
"""How TheirStack's ``period_start`` writes a local midnight: ``offset`` the local time with its
offset (``...T00:00:00-05:00``; ``Z`` where the offset is 0), ``utc`` the same instant in UTC
(``...T05:00:00Z``), ``local_z`` the local date wrongly labelled UTC (``...T00:00:00Z``)."""


# --------------------------------------------------------------------------- field converters


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _non_negative(value: Any) -> float:
    number = _float(value)
    if number < 0 or math.isnan(number):
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return number


def _opt_positive_int(value: Any) -> int | None:
    if value is None:
        return None
    number = _int(value)
    if number <= 0:
        raise ValueError(f"expected an integer > 0, got {value!r}")
    return number


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [_str(v) for v in value]


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _malformed(value: Any) -> str | None:
    if value is None:
        return None
    if value not in MALFORMED_MODES:
        raise ValueError(f"unknown malformed mode {value!r}; one of {', '.join(MALFORMED_MODES)}")
    return str(value)


def _fail(value: Any) -> dict[str, Any] | None:
    """``{"status": int, "body": str | JSON, "retry_after": str, "content_type": str,
    "headers": {name: value}}`` (``headers`` e.g. a ``Location`` for a redirect)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"fail: expected an object, got {type(value).__name__}")
    unknown = set(value) - {"status", "body", "retry_after", "content_type", "headers"}
    if unknown:
        raise ValueError(f"fail: unknown keys {sorted(unknown)}")
    status = _int(value.get("status"))
    if not 100 <= status <= 599:
        raise ValueError(f"fail: status {status} is not an HTTP status")
    spec: dict[str, Any] = {"status": status}
    if value.get("body") is not None:
        spec["body"] = value["body"]
    if value.get("retry_after") is not None:
        spec["retry_after"] = str(value["retry_after"])
    if value.get("content_type") is not None:
        spec["content_type"] = _str(value["content_type"])
    if value.get("headers") is not None:
        if not isinstance(value["headers"], Mapping):
            raise TypeError("fail.headers: expected an object of header name -> value")
        spec["headers"] = {_str(k): _str(v) for k, v in value["headers"].items()}
    return spec


def _paths_fail(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"paths_fail: expected an object, got {type(value).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for suffix, spec in value.items():
        checked = _fail(spec)
        if checked is not None:
            out[_str(suffix)] = checked
    return out


Converter = Callable[[Any], Any]

COMMON_FIELDS: dict[str, Converter] = {
    "latency": _non_negative,
    "fail": _fail,
    "paths_fail": _paths_fail,
    "revoked": _bool,
    "malformed": _malformed,
    "rate_limit_per_second": _opt_positive_int,
    "rate_limit_per_minute": _opt_positive_int,
}


# --------------------------------------------------------------------------- time helpers


def _units(rate_per_day: float, anchor: float, t0: float, t1: float) -> int:
    """Whole credits burnt in [t0, t1) at ``rate_per_day`` counted from ``anchor``.

    Summing over adjacent intervals gives exactly the total over their union, so lazily settling
    at arbitrary moments never loses or invents a credit.
    """
    if rate_per_day <= 0 or t1 <= t0:
        return 0
    return math.floor(rate_per_day * (t1 - anchor) / DAY) - math.floor(
        rate_per_day * (t0 - anchor) / DAY
    )


def _iso_z(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _utc_midnight(day: date) -> float:
    return datetime.combine(day, dtime(0), UTC).timestamp()


# --------------------------------------------------------------------------- account states


@dataclass(kw_only=True)
class AccountState:
    """State common to every simulated account; subclasses add a provider's own fields."""

    provider: ClassVar[str] = ""
    FIELDS: ClassVar[dict[str, Converter]] = {}

    api_key: str
    last_settle: float
    burn_anchor: float
    latency: float = 0.0
    fail: dict[str, Any] | None = None
    paths_fail: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: bool = False
    malformed: str | None = None
    rate_limit_per_second: int | None = None
    rate_limit_per_minute: int | None = None
    hits: deque[float] = field(default_factory=deque)

    @classmethod
    def all_fields(cls) -> dict[str, Converter]:
        return {**COMMON_FIELDS, **cls.FIELDS}

    @classmethod
    def create(cls, api_key: str, now: float) -> Self:
        state = cls(api_key=api_key, last_settle=now, burn_anchor=now)
        state.init_defaults(now)
        return state

    def init_defaults(self, now: float) -> None:
        """Set defaults that depend on the simulated time (subclasses)."""

    def apply(self, fields: Mapping[str, Any], now: float) -> None:
        """Settle up to ``now``, then validate and set ``fields`` (all or nothing)."""
        known = self.all_fields()
        converted: dict[str, Any] = {}
        for name, value in fields.items():
            converter = known.get(name)
            if converter is None:
                raise ValueError(f"{self.provider}: unknown field {name!r}")
            try:
                converted[name] = converter(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{self.provider}.{name}: {exc}") from None
        self.settle(now)
        if any(name.startswith("burn_") for name in converted):
            self.burn_anchor = now
        for name, value in converted.items():
            self.set_field(name, value)

    def set_field(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def settle(self, now: float) -> None:
        """Apply the burn between the last settle and ``now``."""
        if now > self.last_settle:
            self.advance_state(self.last_settle, now)
            self.last_settle = now

    def advance_state(self, t0: float, t1: float) -> None:
        """Move the provider's state from ``t0`` to ``t1`` (subclasses)."""

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self.provider}
        for name in self.all_fields():
            out[name] = copy.deepcopy(getattr(self, name, None))
        return out


@dataclass(kw_only=True)
class TheirStackAccount(AccountState):
    provider: ClassVar[str] = "theirstack"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "api_credits": _int,
        "ui_credits": _int,
        "used_api_credits": _int,
        "used_ui_credits": _int,
        "earliest_expiration": _opt_str,
        "burn_api_per_day": _non_negative,
        "burn_ui_per_day": _non_negative,
        "consumption_days": lambda v: _consumption_days(v),
        "omit_zero_days": _bool,
        "period_start_form": lambda v: _choice(v, PERIOD_START_FORMS),
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
            start = int(_utc_midnight(day))
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
            api = min(_units(self.burn_api_per_day, self.burn_anchor, s, e), self.api_credits)
            ui = min(_units(self.burn_ui_per_day, self.burn_anchor, s, e), self.ui_credits)
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


def _consumption_days(value: Any) -> dict[date, tuple[int, int]]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of date -> {{api, ui}}, got {type(value).__name__}")
    out: dict[date, tuple[int, int]] = {}
    for key, counts in value.items():
        day = date.fromisoformat(_str(key)) if not isinstance(key, date) else key
        if not isinstance(counts, Mapping) or set(counts) - {"api", "ui"}:
            raise ValueError(f'{key}: expected {{"api": int, "ui": int}}')
        out[day] = (_int(counts.get("api", 0)), _int(counts.get("ui", 0)))
    return out


def _user(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"user: expected an object, got {type(value).__name__}")
    user = dict(value)
    user.setdefault("name", "")
    user.setdefault("email", "")
    user["promptCreditsUsed"] = _int(user.get("promptCreditsUsed", 0))
    user["activeDays"] = _int(user.get("activeDays", 0))
    user.setdefault("teamStatus", "USER_TEAM_STATUS_APPROVED")
    return user


@dataclass(kw_only=True)
class WindsurfAccount(AccountState):
    provider: ClassVar[str] = "windsurf"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "prompt_credits_per_seat": _int,
        "num_seats": _int,
        "add_on_credits_available": _int,
        "add_on_credits_used": _int,
        "billing_cycle_start": _str,
        "billing_cycle_end": _str,
        "users": lambda v: [_user(u) for u in v],
        "permissions": _str_list,
        "burn_prompt_per_day": _non_negative,
        "burn_add_on_per_day": _non_negative,
        "numbers_as_strings": _bool,
        "analytics_shape": lambda v: _choice(v, ANALYTICS_SHAPES),
        "analytics_lag_seconds": _non_negative,
    }

    prompt_credits_per_seat: int = 500
    num_seats: int = 10
    add_on_credits_available: int = 0
    add_on_credits_used: int = 0
    billing_cycle_start: str = ""
    billing_cycle_end: str = ""
    users: list[dict[str, Any]] = field(default_factory=list)
    permissions: list[str] = field(default_factory=lambda: ["Billing Read", "Teams Read-Only"])
    burn_prompt_per_day: float = 0.0
    """Prompt credits used per day, spread over the users; past the seats' pool, add-on credits."""
    burn_add_on_per_day: float = 0.0
    numbers_as_strings: bool = False
    """Write the counts as strings, as protobuf JSON may write an int64."""
    analytics_shape: str = "current"
    """``current``: usage per user and the billing cycle; ``legacy``: the older documented
    answer, with neither."""
    analytics_lag_seconds: float = 0.0
    """After a cycle reset, UserPageAnalytics keeps reporting the old cycle this long (upstream
    refreshes analytics about every 3 hours)."""
    previous_cycle: dict[str, Any] | None = None
    """The cycle before the last reset, as analytics reports it while it lags."""
    previous_cycle_until: float = 0.0
    next_user: int = 0

    def init_defaults(self, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC)
        start = datetime(today.year, today.month, 1, tzinfo=UTC)
        self.billing_cycle_start = _iso_z(start.timestamp())
        self.billing_cycle_end = _iso_z(_add_months(start, 1).timestamp())

    def advance_state(self, t0: float, t1: float) -> None:
        while True:
            end = _parse_iso(self.billing_cycle_end)
            end_ts = end.timestamp() if end is not None else None
            if end_ts is None or end_ts > t1:
                self._burn(t0, t1)
                return
            seg_end = max(t0, end_ts)
            self._burn(t0, seg_end)
            if not self._roll_cycle():
                return
            t0 = seg_end

    def _burn(self, t0: float, t1: float) -> None:
        prompt = _units(self.burn_prompt_per_day, self.burn_anchor, t0, t1)
        add_on = _units(self.burn_add_on_per_day, self.burn_anchor, t0, t1)
        if prompt and self.users:
            pool_left = self.prompt_credits_per_seat * self.num_seats - sum(
                u["promptCreditsUsed"] for u in self.users
            )
            to_users = max(0, min(prompt, pool_left))
            add_on += prompt - to_users
            share, extra = divmod(to_users, len(self.users))
            for i in range(len(self.users)):
                user = self.users[(self.next_user + i) % len(self.users)]
                user["promptCreditsUsed"] += share + (1 if i < extra else 0)
            self.next_user = (self.next_user + extra) % len(self.users)
        elif prompt:
            add_on += prompt
        room = max(0, self.add_on_credits_available - self.add_on_credits_used)
        self.add_on_credits_used += min(add_on, room)

    def _roll_cycle(self) -> bool:
        """Start the next billing cycle; False when the cycle dates make no sense."""
        start, end = _parse_iso(self.billing_cycle_start), _parse_iso(self.billing_cycle_end)
        if start is None or end is None or end <= start:
            return False
        months = (end.year - start.year) * 12 + end.month - start.month
        if months > 0 and _add_months(start, months) == end:
            new_end = _add_months(end, months)
        else:
            new_end = end + (end - start)
        self.previous_cycle = {
            "start": self.billing_cycle_start,
            "end": self.billing_cycle_end,
            "users": copy.deepcopy(self.users),
        }
        self.previous_cycle_until = end.timestamp() + self.analytics_lag_seconds
        self.billing_cycle_start = _iso_z(end.timestamp())
        self.billing_cycle_end = _iso_z(new_end.timestamp())
        # "recomputed at the start of every billing cycle based on what was consumed"
        self.add_on_credits_available = max(
            0, self.add_on_credits_available - self.add_on_credits_used
        )
        self.add_on_credits_used = 0
        for user in self.users:
            user["promptCreditsUsed"] = 0
            user["activeDays"] = 0
        return True


@dataclass(kw_only=True)
class FullEnrichAccount(AccountState):
    provider: ClassVar[str] = "fullenrich"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "balance": _float,
        "burn_per_day": _non_negative,
    }

    balance: float = 0.0
    burn_per_day: float = 0.0

    def advance_state(self, t0: float, t1: float) -> None:
        if self.burn_per_day > 0 and self.balance > 0:
            self.balance = max(0.0, self.balance - self.burn_per_day * (t1 - t0) / DAY)


# --------------------------------------------------------------------------- provider table


@dataclass(frozen=True, slots=True)
class Reply:
    """What an endpoint answers: a JSON ``body``, or ``raw`` bytes with their content type."""

    status: int = 200
    body: JSON = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call:
    """One provider request as an endpoint handler sees it."""

    request: web.Request
    body: JSON
    now: float


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    """Relative to the provider's mount point."""
    handler: Callable[[Any, Call], Reply]
    key_field: str
    """Dropped by ``missing_field``, nulled by ``null_field``."""
    numeric: tuple[str, ...]
    """Stringified by ``string_number``, negated by ``negative``."""


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    mount: str
    state: type[AccountState]
    endpoints: tuple[Endpoint, ...]
    credential: Callable[[web.Request, JSON], tuple[str | None, str | None]]
    """(key, None) or (None, failure kind: "missing" | "not_bearer")."""
    error: Callable[[int, str | None], JSON]
    """Error body for a status and a kind: "missing", "not_bearer", "unknown", "revoked",
    "rate_limited", or None for a plain injected failure."""
    json_body: bool = False
    advertised_limits: tuple[tuple[str, int, int], ...] = ()
    """(window name, seconds, limit) sent in RateLimit headers even when not enforced."""
    rate_headers: bool = False


def _bearer(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization")
    if header is None or not header.strip():
        return None, "missing"
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "not_bearer"
    return token.strip(), None


def _service_key(_request: web.Request, body: JSON) -> tuple[str | None, str | None]:
    key = body.get("service_key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        return None, "missing"
    return key, None


_TS_TITLES = {
    400: "Bad request",
    402: "Payment required",
    404: "Not found",
    422: "Validation error",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


def _theirstack_error(status: int, kind: str | None, description: str | None = None) -> JSON:
    if status in (401, 403) or kind in ("missing", "not_bearer", "unknown", "revoked"):
        text = {
            "missing": "Missing Authorization header with a Bearer token",
            "not_bearer": "Missing Authorization header with a Bearer token",
            "revoked": "This API key has been revoked",
        }.get(kind or "", "Invalid API key")
        error: dict[str, Any] = {"code": "E-001", "title": "Not allowed exception"}
        error["description"] = description or text
        return {"request_id": None, "error": error}
    title = _TS_TITLES.get(status, "Error")
    return {
        "request_id": None,
        "error": {"title": title, "description": description or f"{title} (simulated)"},
    }


def _windsurf_error(status: int, kind: str | None) -> JSON:
    if kind in ("missing", "unknown", "revoked") or status == 401:
        return {"error": "Invalid service key"}
    messages = {
        400: "Bad request",
        402: "Feature not available for your plan",
        403: "Insufficient permissions",
        429: "Rate limit exceeded",
        500: "Internal error",
        503: "Service unavailable",
    }
    return {"error": messages.get(status, f"HTTP {status}")}


def _fullenrich_error(status: int, kind: str | None) -> JSON:
    if kind == "missing":
        return {"code": "error.authorization.not_set", "message": "Authorization headers not set"}
    if kind == "not_bearer":
        return {
            "code": "error.authorization.not_bearer",
            "message": "Authorization headers do not have prefix 'bearer'",
        }
    if kind in ("unknown", "revoked") or status == 401:
        return {"code": "error.api.key", "message": "Unknown api key"}
    if status == 429:
        return {"code": "error.rate.limit", "message": "Too many requests. Try again in 1m"}
    if status == 404:
        return {"code": "error.workspace.not_found", "message": "Workspace ID not found"}
    if status == 402:
        return {"code": "error.credits.insufficient", "message": "Not enough credits"}
    if status >= 500:
        return {"code": "error.internal", "message": "Internal server error"}
    return {"code": "error.request", "message": f"HTTP {status}"}


def _ts_balance(acct: TheirStackAccount, _call: Call) -> Reply:
    body: dict[str, Any] = {
        "ui_credits": acct.ui_credits,
        "used_ui_credits": acct.used_ui_credits,
        "api_credits": acct.api_credits,
        "used_api_credits": acct.used_api_credits,
    }
    if acct.earliest_expiration is not None:
        body["earliest_expiration"] = acct.earliest_expiration
    return Reply(body=body)


def _ts_datetime(value: str | None, tz: ZoneInfo) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


def _ts_consumption(acct: TheirStackAccount, call: Call) -> Reply:
    query = call.request.query
    tz_name = query.get("timezone") or "UTC"
    try:
        tz = ZoneInfo(tz_name)
    except (KeyError, ValueError, OSError):
        return Reply(422, _theirstack_error(422, None, f"Invalid timezone: {tz_name[:64]}"))
    try:
        end = _ts_datetime(query.get("end_datetime"), tz)
        start = _ts_datetime(query.get("start_datetime"), tz)
    except ValueError:
        return Reply(422, _theirstack_error(422, None, "Invalid datetime format"))
    end = end or datetime.fromtimestamp(call.now, tz)
    first = start.date() if start is not None else end.date() - timedelta(days=29)
    last = end.date()
    if first > last:
        return Reply(
            422, _theirstack_error(422, None, "start_datetime must be before end_datetime")
        )
    if (last - first).days >= MAX_CONSUMPTION_DAYS:
        return Reply(422, _theirstack_error(422, None, "Date range too large"))
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
        return _iso_z(midnight.timestamp())
    return midnight.isoformat()


def _ws_forbidden(acct: WindsurfAccount, permission: str) -> Reply | None:
    if permission in acct.permissions:
        return None
    return Reply(403, {"error": "Insufficient permissions"})


def _protobuf_json(obj: dict[str, Any], strings: bool) -> dict[str, Any]:
    """``obj`` as protobuf JSON writes it: fields at their zero value (0, "", [], false) left
    out, and with ``strings`` the integers written as strings (as an int64 may be)."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if value is None or value is False or (not isinstance(value, dict) and not value):
            continue  # None, false, 0, 0.0, "" and [] are left out
        if strings and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        out[key] = value
    return out


def _ws_balance(acct: WindsurfAccount, _call: Call) -> Reply:
    denied = _ws_forbidden(acct, "Billing Read")
    if denied is not None:
        return denied
    body = {
        "promptCreditsPerSeat": acct.prompt_credits_per_seat,
        "numSeats": acct.num_seats,
        "addOnCreditsAvailable": acct.add_on_credits_available,
        "addOnCreditsUsed": acct.add_on_credits_used,
        "billingCycleStart": acct.billing_cycle_start,
        "billingCycleEnd": acct.billing_cycle_end,
    }
    return Reply(body=_protobuf_json(body, acct.numbers_as_strings))


def _ws_analytics(acct: WindsurfAccount, call: Call) -> Reply:
    denied = _ws_forbidden(acct, "Teams Read-Only")
    if denied is not None:
        return denied
    users, start, end = acct.users, acct.billing_cycle_start, acct.billing_cycle_end
    if acct.previous_cycle is not None and call.now < acct.previous_cycle_until:
        previous = acct.previous_cycle  # analytics has not caught up with the reset yet
        users, start, end = previous["users"], previous["start"], previous["end"]
    group = call.body.get("group_name") if isinstance(call.body, dict) else None
    stats = []
    for user in users:
        if group and user.get("group") != group:
            continue
        row = {k: v for k, v in user.items() if k != "group"}
        if acct.analytics_shape == "legacy":
            row.pop("promptCreditsUsed", None)
        row.setdefault("lastUpdateTime", _iso_z(acct.last_settle))
        stats.append(_protobuf_json(row, acct.numbers_as_strings))
    body: dict[str, Any] = {"userTableStats": stats}
    if acct.analytics_shape == "current":
        body |= {"billingCycleStart": start, "billingCycleEnd": end}
    return Reply(body=_protobuf_json(body, acct.numbers_as_strings))


def _fe_credits(acct: FullEnrichAccount, _call: Call) -> Reply:
    return Reply(body={"balance": round(acct.balance, 2)})


PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    """Add a provider to the table every :class:`Simulator` mounts."""
    PROVIDERS[provider.name] = provider
    return provider


register(
    Provider(
        name="theirstack",
        mount="/theirstack",
        state=TheirStackAccount,
        endpoints=(
            Endpoint(
                "GET",
                "/v0/billing/credit-balance",
                _ts_balance,
                "api_credits",
                ("api_credits", "ui_credits", "used_api_credits", "used_ui_credits"),
            ),
            Endpoint(
                "GET",
                "/v0/teams/credits_consumption",
                _ts_consumption,
                "api_credits_consumed",
                ("api_credits_consumed", "ui_credits_consumed"),
            ),
        ),
        credential=_bearer,
        error=_theirstack_error,
        advertised_limits=(("per-second", 1, 4),),
        rate_headers=True,
    )
)
register(
    Provider(
        name="windsurf",
        mount="/windsurf/api/v1",
        state=WindsurfAccount,
        endpoints=(
            Endpoint(
                "POST",
                "/GetTeamCreditBalance",
                _ws_balance,
                "promptCreditsPerSeat",
                ("promptCreditsPerSeat", "numSeats", "addOnCreditsAvailable", "addOnCreditsUsed"),
            ),
            Endpoint(
                "POST",
                "/UserPageAnalytics",
                _ws_analytics,
                "userTableStats",
                ("promptCreditsUsed", "activeDays"),
            ),
        ),
        credential=_service_key,
        error=_windsurf_error,
        json_body=True,
    )
)
register(
    Provider(
        name="fullenrich",
        mount="/fullenrich/api/v2",
        state=FullEnrichAccount,
        endpoints=(Endpoint("GET", "/account/credits", _fe_credits, "balance", ("balance",)),),
        credential=_bearer,
        error=_fullenrich_error,
    )
)


# --------------------------------------------------------------------------- generic-provider APIs
# The APIs the http_json presets read (exporter/providers/presets/*.yaml), with their documented
# answer shapes, auth and error bodies. No burn: tests set the values they expect.


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _meter(value: Any) -> dict[str, int] | None:
    """A Hunter request meter ``{"used": int, "available": int, "remaining": int}`` (remaining
    optional: older answers lack it); None leaves the meter out."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"used", "available", "remaining"}:
        raise ValueError('expected {"used": int, "available": int[, "remaining": int]} or null')
    meter = {"used": _int(value.get("used", 0)), "available": _int(value.get("available", 0))}
    if "remaining" in value:
        meter["remaining"] = _int(value["remaining"])
    return meter


def _balances(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of currency -> amount, got {type(value).__name__}")
    return {_str(k): _float(v) for k, v in value.items()}


@dataclass(kw_only=True)
class OpenRouterAccount(AccountState):
    provider: ClassVar[str] = "openrouter"
    FIELDS: ClassVar[dict[str, Converter]] = {"total_credits": _float, "total_usage": _float}

    total_credits: float = 0.0
    total_usage: float = 0.0


@dataclass(kw_only=True)
class DeepLAccount(AccountState):
    """Keys ending in ``:fx`` are DeepL API Free keys: only the free host (``/deepl-free``)
    accepts them, and only the Pro host (``/deepl``) accepts the others, like the real API."""

    provider: ClassVar[str] = "deepl"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "character_count": _int,
        "character_limit": _int,
        "start_time": _opt_str,
        "end_time": _opt_str,
    }

    character_count: int = 0
    character_limit: int = 500_000
    start_time: str | None = None
    """Pro only: the billing period (sent when set)."""
    end_time: str | None = None


@dataclass(kw_only=True)
class ElevenLabsAccount(AccountState):
    provider: ClassVar[str] = "elevenlabs"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "tier": _str,
        "character_count": _int,
        "character_limit": _int,
        "next_character_count_reset_unix": _opt_int,
    }

    tier: str = "creator"
    character_count: int = 0
    character_limit: int = 100_000
    next_character_count_reset_unix: int | None = None


@dataclass(kw_only=True)
class HunterAccount(AccountState):
    provider: ClassVar[str] = "hunter"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "plan_name": _str,
        "reset_date": _opt_str,
        "credits": _meter,
        "searches": _meter,
        "verifications": _meter,
    }

    plan_name: str = "Starter"
    reset_date: str | None = None
    credits: dict[str, int] | None = field(default_factory=lambda: {"used": 0, "available": 0})
    searches: dict[str, int] | None = field(default_factory=lambda: {"used": 0, "available": 0})
    verifications: dict[str, int] | None = field(
        default_factory=lambda: {"used": 0, "available": 0}
    )

    def init_defaults(self, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC)
        self.reset_date = _add_months(today.replace(day=1), 1).date().isoformat()


@dataclass(kw_only=True)
class TwilioAccount(AccountState):
    """The api_key is the auth token; requests must name ``account_sid`` in the path and as
    the Basic username."""

    provider: ClassVar[str] = "twilio"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "account_sid": _str,
        "balance": _float,
        "currency": _str,
        "subaccount": _bool,
    }

    account_sid: str = ""
    balance: float = 0.0
    """May be negative, as on a real account that used more than its balance."""
    currency: str = "USD"
    subaccount: bool = False
    """A subaccount: Twilio answers null balance and currency (the parent holds the balance)."""

    def init_defaults(self, now: float) -> None:
        self.account_sid = "AC" + hashlib.sha256(self.api_key.encode()).hexdigest()[:32]


@dataclass(kw_only=True)
class DeepSeekAccount(AccountState):
    provider: ClassVar[str] = "deepseek"
    FIELDS: ClassVar[dict[str, Converter]] = {"balances": _balances, "granted": _balances}

    balances: dict[str, float] = field(default_factory=lambda: {"CNY": 0.0})
    """Currency -> total balance."""
    granted: dict[str, float] = field(default_factory=dict)
    """Currency -> the granted (free) part of the total."""


def _header_key(
    name: str, scheme: str | None = None
) -> Callable[[web.Request, JSON], tuple[str | None, str | None]]:
    def credential(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
        value = request.headers.get(name, "").strip()
        if not value:
            return None, "missing"
        if scheme is None:
            return value, None
        given, _, token = value.partition(" ")
        if given != scheme or not token.strip():
            return None, "not_bearer"
        return token.strip(), None

    return credential


def _query_key(name: str) -> Callable[[web.Request, JSON], tuple[str | None, str | None]]:
    def credential(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
        value = request.query.get(name, "")
        return (value, None) if value else (None, "missing")

    return credential


def _basic_password(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None, "missing"
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, "missing"
    if not sep or not user or not password:
        return None, "missing"
    return password, None


def _basic_username(request: web.Request) -> str:
    encoded = request.headers.get("Authorization", "").strip().partition(" ")[2]
    return base64.b64decode(encoded).decode().partition(":")[0]


def _openrouter_error(status: int, kind: str | None) -> JSON:
    messages = {401: "No auth credentials found", 402: "Insufficient credits"}
    if kind in ("unknown", "revoked"):
        message = "User not found."
    else:
        message = messages.get(status, "Rate limit exceeded" if status == 429 else "Error")
    return {"error": {"code": status, "message": message}}


def _deepl_error(status: int, kind: str | None) -> JSON:
    if kind is not None or status in (401, 403):
        return {"message": "Authorization failure, check auth_key"}
    messages = {429: "Too many requests", 456: "Quota exceeded", 503: "Service unavailable"}
    return {"message": messages.get(status, "Internal server error")}


def _elevenlabs_error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        return {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
    if status == 429:
        return {"detail": {"status": "too_many_concurrent_requests", "message": "Too many"}}
    return {"detail": {"status": "error", "message": f"HTTP {status}"}}


def _hunter_error(status: int, kind: str | None) -> JSON:
    if kind == "missing":
        error = {"id": "authentication_failed", "code": 401, "details": "No API key given"}
    elif kind is not None or status == 401:
        error = {
            "id": "authentication_failed",
            "code": 401,
            "details": "No user found for the API key supplied",
        }
    elif status == 429:
        error = {"id": "too_many_requests", "code": 429, "details": "You have reached the rate"}
    else:
        error = {"id": "error", "code": status, "details": f"HTTP {status}"}
    return {"errors": [error]}


def _twilio_error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        code, message = 20003, "Authenticate"
    elif status == 404:
        code, message = 20404, "The requested resource was not found"
    elif status == 429:
        code, message = 20429, "Too Many Requests"
    else:
        code, message = 20500, "Internal Server Error"
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _deepseek_error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        message, kind_name = "Authentication Fails (no such user)", "authentication_error"
    elif status == 402:
        message, kind_name = "Insufficient Balance", "unknown_error"
    elif status == 429:
        message, kind_name = "Rate limit reached", "rate_limit_error"
    else:
        message, kind_name = "Server error", "server_error"
    return {
        "error": {"message": message, "type": kind_name, "param": None, "code": "invalid_request"}
    }


def _or_credits(acct: OpenRouterAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "data": {
                "total_credits": round(acct.total_credits, 6),
                "total_usage": round(acct.total_usage, 6),
            }
        }
    )


def _deepl_usage(free: bool) -> Callable[[DeepLAccount, Call], Reply]:
    def handler(acct: DeepLAccount, _call: Call) -> Reply:
        if acct.api_key.endswith(":fx") != free:
            host = "https://api-free.deepl.com" if not free else "https://api.deepl.com"
            return Reply(403, {"message": f"Wrong endpoint. Use {host}"})
        body: dict[str, Any] = {
            "character_count": acct.character_count,
            "character_limit": acct.character_limit,
        }
        if not free:
            if acct.start_time is not None:
                body["start_time"] = acct.start_time
            if acct.end_time is not None:
                body["end_time"] = acct.end_time
            body["api_key_character_count"] = acct.character_count
            body["api_key_character_limit"] = 1_000_000_000_000
        return Reply(body=body)

    return handler


def _el_subscription(acct: ElevenLabsAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "tier": acct.tier,
            "character_count": acct.character_count,
            "character_limit": acct.character_limit,
            "can_extend_character_limit": acct.tier != "free",
            "allowed_to_extend_character_limit": acct.tier != "free",
            "next_character_count_reset_unix": acct.next_character_count_reset_unix,
            "voice_limit": 30,
            "professional_voice_limit": 1,
            "can_use_instant_voice_cloning": True,
            "currency": "usd",
            "status": "active",
            "billing_period": "monthly_period",
            "character_refresh_period": "monthly_period",
        }
    )


def _hunter_account(acct: HunterAccount, _call: Call) -> Reply:
    requests = {
        meter: value
        for meter, value in (
            ("searches", acct.searches),
            ("verifications", acct.verifications),
            ("credits", acct.credits),
        )
        if value is not None
    }
    return Reply(
        body={
            "data": {
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ada@example.com",
                "plan_name": acct.plan_name,
                "plan_level": 1,
                "reset_date": acct.reset_date,
                "team_id": 1,
                "calls": {"_deprecation_notice": "Sums the searches and the verifications"},
                "requests": requests,
            }
        }
    )


def _twilio_balance(acct: TwilioAccount, call: Call) -> Reply:
    if _basic_username(call.request) != acct.account_sid:
        return Reply(401, _twilio_error(401, "unknown"))
    if call.request.match_info.get("sid") != acct.account_sid:
        return Reply(404, _twilio_error(404, None))
    return Reply(
        body={
            "account_sid": acct.account_sid,
            "balance": None if acct.subaccount else f"{acct.balance:.2f}",
            "currency": None if acct.subaccount else acct.currency,
        }
    )


def _deepseek_balance(acct: DeepSeekAccount, _call: Call) -> Reply:
    infos = []
    for currency, total in acct.balances.items():
        granted = acct.granted.get(currency, 0.0)
        infos.append(
            {
                "currency": currency,
                "total_balance": f"{total:.2f}",
                "granted_balance": f"{granted:.2f}",
                "topped_up_balance": f"{total - granted:.2f}",
            }
        )
    return Reply(
        body={"is_available": any(v > 0 for v in acct.balances.values()), "balance_infos": infos}
    )


register(
    Provider(
        name="openrouter",
        mount="/openrouter/api/v1",
        state=OpenRouterAccount,
        endpoints=(
            Endpoint(
                "GET", "/credits", _or_credits, "total_credits", ("total_credits", "total_usage")
            ),
        ),
        credential=_bearer,
        error=_openrouter_error,
    )
)
for _name, _mount, _free in (("deepl", "/deepl", False), ("deepl-free", "/deepl-free", True)):
    register(
        Provider(
            name=_name,
            mount=_mount,
            state=DeepLAccount,
            endpoints=(
                Endpoint(
                    "GET",
                    "/v2/usage",
                    _deepl_usage(_free),
                    "character_count",
                    ("character_count", "character_limit"),
                ),
            ),
            credential=_header_key("Authorization", "DeepL-Auth-Key"),
            error=_deepl_error,
        )
    )
register(
    Provider(
        name="elevenlabs",
        mount="/elevenlabs",
        state=ElevenLabsAccount,
        endpoints=(
            Endpoint(
                "GET",
                "/v1/user/subscription",
                _el_subscription,
                "character_count",
                ("character_count", "character_limit", "next_character_count_reset_unix"),
            ),
        ),
        credential=_header_key("xi-api-key"),
        error=_elevenlabs_error,
    )
)
register(
    Provider(
        name="hunter",
        mount="/hunter/v2",
        state=HunterAccount,
        endpoints=(
            Endpoint("GET", "/account", _hunter_account, "requests", ("used", "available")),
        ),
        credential=_query_key("api_key"),
        error=_hunter_error,
    )
)
register(
    Provider(
        name="twilio",
        mount="/twilio",
        state=TwilioAccount,
        endpoints=(
            Endpoint(
                "GET",
                "/2010-04-01/Accounts/{sid}/Balance.json",
                _twilio_balance,
                "balance",
                ("balance",),
            ),
        ),
        credential=_basic_password,
        error=_twilio_error,
    )
)
register(
    Provider(
        name="deepseek",
        mount="/deepseek",
        state=DeepSeekAccount,
        endpoints=(
            Endpoint(
                "GET",
                "/user/balance",
                _deepseek_balance,
                "balance_infos",
                ("total_balance", "granted_balance", "topped_up_balance"),
            ),
        ),
        credential=_bearer,
        error=_deepseek_error,
    )
)


# --------------------------------------------------------------------------- malformed bodies


def _negate(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return -abs(value) if value else -1


def _mutate(body: JSON, mode: str, endpoint: Endpoint) -> JSON:
    """Apply a shape-breaking ``mode`` to every object in ``body`` (recursively)."""
    if mode == "wrong_shape":
        return [body] if isinstance(body, dict) else {"data": body}
    if isinstance(body, list):
        return [_mutate(item, mode, endpoint) for item in body]
    if not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == endpoint.key_field and mode == "missing_field":
            continue
        if key == endpoint.key_field and mode == "null_field":
            out[key] = None
        elif key in endpoint.numeric and mode == "string_number":
            out[key] = str(value)
        elif key in endpoint.numeric and mode == "negative":
            out[key] = _negate(value)
        elif key in endpoint.numeric and mode == "absurd":
            out[key] = ABSURD_NUMBER
        else:
            out[key] = _mutate(value, mode, endpoint)
    return out


_SHAPE_MODES = frozenset(
    {"wrong_shape", "missing_field", "string_number", "null_field", "negative", "absurd"}
)
ABSURD_NUMBER = 10**18

_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center>"
    b"</body></html>\n"
)


# --------------------------------------------------------------------------- the simulator


def _demo_states(now: float) -> dict[str, tuple[str, dict[str, Any]]]:
    """Realistic starting state for the demo accounts, with history and burn."""
    rng = random.Random(20261120)
    today = datetime.fromtimestamp(now, UTC).date()
    day_fraction = (now - _utc_midnight(today)) / DAY

    def history(api_rate: float, ui_rate: float) -> dict[str, dict[str, int]]:
        days: dict[str, dict[str, int]] = {}
        for back in range(1, 31):
            day = today - timedelta(days=back)
            weekday = 1.0 if day.weekday() < 5 else 0.35
            days[day.isoformat()] = {
                "api": int(api_rate * weekday * rng.uniform(0.7, 1.3)),
                "ui": int(ui_rate * weekday * rng.uniform(0.5, 1.5)),
            }
        days[today.isoformat()] = {
            "api": int(api_rate * day_fraction),
            "ui": int(ui_rate * day_fraction),
        }
        return days

    cycle_start = datetime(today.year, today.month, 1, tzinfo=UTC)
    names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"]
    names += ["Ken Thompson"]
    users = [
        {
            "name": name,
            "email": name.split()[0].lower() + "@example.com",
            "promptCreditsUsed": rng.randint(80, 1400),
            "activeDays": rng.randint(3, 20),
            "teamStatus": "USER_TEAM_STATUS_APPROVED",
        }
        for name in names
    ]
    return {
        "demo-theirstack-growth": (
            "theirstack",
            {
                "api_credits": 48_200,
                "ui_credits": 1_150,
                "used_api_credits": 11_800,
                "used_ui_credits": 350,
                "burn_api_per_day": 1_800.0,
                "burn_ui_per_day": 40.0,
                "consumption_days": history(1_800, 40),
            },
        ),
        "demo-theirstack-research": (
            "theirstack",
            {
                "api_credits": 3_400,
                "ui_credits": 90,
                "used_api_credits": 6_600,
                "used_ui_credits": 110,
                "earliest_expiration": _iso_z(now + 20 * DAY),
                "burn_api_per_day": 260.0,
                "burn_ui_per_day": 6.0,
                "consumption_days": history(260, 6),
            },
        ),
        "demo-windsurf-engineering": (
            "windsurf",
            {
                "prompt_credits_per_seat": 500,
                "num_seats": 25,
                "add_on_credits_available": 10_000,
                "add_on_credits_used": 3_500,
                "billing_cycle_start": _iso_z(cycle_start.timestamp()),
                "billing_cycle_end": _iso_z(_add_months(cycle_start, 1).timestamp()),
                "users": users,
                "burn_prompt_per_day": 350.0,
                "burn_add_on_per_day": 120.0,
            },
        ),
        "demo-windsurf-design": (
            "windsurf",
            {
                # No add-on credits ever bought: protobuf JSON leaves both fields out.
                "prompt_credits_per_seat": 500,
                "num_seats": 4,
                "billing_cycle_start": _iso_z(cycle_start.timestamp()),
                "billing_cycle_end": _iso_z(_add_months(cycle_start, 1).timestamp()),
                "users": [{**u, "promptCreditsUsed": rng.randint(40, 300)} for u in users[:4]],
                "numbers_as_strings": True,
                "burn_prompt_per_day": 40.0,
            },
        ),
        "demo-fullenrich-sales": (
            "fullenrich",
            {"balance": 4_821.5, "burn_per_day": 95.25},
        ),
    }


DEMO_ACCOUNTS: list[dict[str, Any]] = [
    {
        "name": "growth",
        "provider": "theirstack",
        "api_key": "demo-theirstack-growth",
        "low_credit_threshold": {"api": 5_000, "ui": 100},
    },
    {
        "name": "research",
        "provider": "theirstack",
        "api_key": "demo-theirstack-research",
        "low_credit_threshold": {"api": 1_000, "ui": 50},
        "consumption": {"timezone": "Europe/Madrid"},
    },
    {
        "name": "engineering",
        "provider": "windsurf",
        "api_key": "demo-windsurf-engineering",
        "prompt_usage": True,
        "low_credit_threshold": {"prompt": 2_000, "add_on": 1_000},
    },
    {
        "name": "design",
        "provider": "windsurf",
        "api_key": "demo-windsurf-design",
        "prompt_usage": True,
        "low_credit_threshold": {"prompt": 200},
    },
    {
        "name": "sales",
        "provider": "fullenrich",
        "api_key": "demo-fullenrich-sales",
        "low_credit_threshold": 500,
    },
]
"""Exporter config account entries for the demo accounts (the caller adds ``base_url``)."""


class Simulator:
    """The simulated APIs and their state. State methods are thread-safe (one lock)."""

    def __init__(
        self, *, seed_demo: bool = False, clock: Callable[[], float] | None = None
    ) -> None:
        self._clock = clock or time.time
        self._offset = 0.0
        self._lock = threading.RLock()
        self._accounts: dict[str, AccountState] = {}
        self._calls: Counter[tuple[str, str]] = Counter()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopping: asyncio.Event | None = None
        self.app = web.Application()
        for provider in PROVIDERS.values():
            for endpoint in provider.endpoints:
                self.app.router.add_route(
                    endpoint.method,
                    provider.mount + endpoint.path,
                    self._provider_handler(provider, endpoint),
                )
        self._add_control_routes()
        if seed_demo:
            for api_key, (provider_name, fields) in _demo_states(self.now()).items():
                self.add_account(provider_name, api_key, **fields)

    # ------------------------------------------------------------------ state API

    def now(self) -> float:
        """The simulated time (epoch seconds)."""
        with self._lock:
            return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward; balances burn and days roll over lazily."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += seconds

    def add_account(self, provider: str, api_key: str, **fields: Any) -> None:
        """Create (or replace) the account with key ``api_key``."""
        spec = PROVIDERS.get(provider)
        if spec is None:
            raise ValueError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        if not api_key:
            raise ValueError("api_key must not be empty")
        with self._lock:
            now = self.now()
            state = spec.state.create(api_key, now)
            state.apply(fields, now)
            self._accounts[api_key] = state

    def update(self, api_key: str, **fields: Any) -> None:
        """Patch an existing account's state; :class:`KeyError` if there is none."""
        with self._lock:
            state = self._accounts[api_key]
            state.apply(fields, self.now())

    def remove_account(self, api_key: str) -> None:
        with self._lock:
            del self._accounts[api_key]

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every account's current state (settled to now)."""
        with self._lock:
            now = self.now()
            out = {}
            for key, state in self._accounts.items():
                state.settle(now)
                out[key] = state.snapshot()
            return out

    def calls(self, api_key: str | None = None, path: str | None = None) -> int:
        """Provider API requests received, optionally only with this key and/or a path ending
        with ``path``. Requests that carried no key count under the key ``""``."""
        with self._lock:
            return sum(
                n
                for (key, request_path), n in self._calls.items()
                if (api_key is None or key == api_key)
                and (path is None or request_path == path or request_path.endswith(path))
            )

    def calls_summary(self) -> dict[str, Any]:
        with self._lock:
            by_key: Counter[str] = Counter()
            by_path: Counter[str] = Counter()
            for (key, path), n in self._calls.items():
                by_key[key] += n
                by_path[path] += n
            return {"total": sum(by_key.values()), "by_key": by_key, "by_path": by_path}

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ------------------------------------------------------------------ serving

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on the running loop; returns the base URL ``http://HOST:PORT``."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        address = runner.addresses[0]
        url_host = str(address[0])
        if url_host in ("0.0.0.0", "::", ""):
            url_host = "127.0.0.1"
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self._runner = runner
        self._url = f"http://{url_host}:{address[1]}"
        return self._url

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._url = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("simulator not started")
        return self._url

    def base_url(self, provider: str) -> str:
        """The ``base_url`` an exporter account of ``provider`` should use."""
        return self.url + PROVIDERS[provider].mount

    async def _pause(self, seconds: float) -> bool:
        """Sleep; True if the simulator is stopping (cut the sleep short)."""
        if self._stopping is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ provider requests

    def _provider_handler(
        self, provider: Provider, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body: JSON = None
            if provider.json_body:
                raw = await request.read()
                with contextlib.suppress(ValueError):
                    body = json.loads(raw) if raw else None
            key, failure = provider.credential(request, body)
            with self._lock:
                self._calls[(key or "", request.path)] += 1
                state = self._accounts.get(key) if key else None
                latency = state.latency if state is not None else 0.0
            if latency > 0 and await self._pause(latency):
                return web.json_response(provider.error(503, None), status=503)
            with self._lock:
                reply, mode = self._answer(provider, endpoint, request, body, key, failure)
            return await self._send(request, reply, mode, endpoint)

        return handle

    def _answer(
        self,
        provider: Provider,
        endpoint: Endpoint,
        request: web.Request,
        body: JSON,
        key: str | None,
        failure: str | None,
    ) -> tuple[Reply, str | None]:
        if failure is not None or key is None:
            return Reply(401, provider.error(401, failure or "missing")), None
        state = self._accounts.get(key)
        if state is None or state.provider != provider.state.provider:
            return Reply(401, provider.error(401, "unknown")), None
        if state.revoked:
            return Reply(401, provider.error(401, "revoked")), None
        now = self.now()
        state.settle(now)
        headers, retry_after = self._rate_limit(provider, state, now)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
            return Reply(429, provider.error(429, "rate_limited"), headers=headers), None
        spec = self._failure_for(state, request.path)
        if spec is not None:
            return self._failure_reply(provider, spec, headers), None
        reply = endpoint.handler(state, Call(request=request, body=body, now=now))
        reply = Reply(
            reply.status,
            reply.body,
            reply.raw,
            reply.content_type,
            {**headers, **reply.headers},
        )
        return reply, (state.malformed if reply.status == 200 else None)

    @staticmethod
    def _failure_for(state: AccountState, path: str) -> dict[str, Any] | None:
        for suffix in sorted(state.paths_fail, key=len, reverse=True):
            if path.endswith(suffix):
                return state.paths_fail[suffix]
        return state.fail

    @staticmethod
    def _failure_reply(
        provider: Provider, spec: Mapping[str, Any], headers: dict[str, str]
    ) -> Reply:
        status = int(spec["status"])
        headers.update(spec.get("headers", {}))
        if "retry_after" in spec:
            headers["Retry-After"] = str(spec["retry_after"])
        content_type = spec.get("content_type")
        body = spec.get("body")
        if body is None:
            return Reply(
                status,
                provider.error(status, None),
                headers=headers,
                content_type=content_type or "application/json",
            )
        if isinstance(body, str):
            return Reply(
                status,
                raw=body.encode(),
                content_type=content_type or "text/plain",
                headers=headers,
            )
        return Reply(status, body, content_type=content_type or "application/json", headers=headers)

    @staticmethod
    def _rate_limit(
        provider: Provider, state: AccountState, now: float
    ) -> tuple[dict[str, str], int | None]:
        """Sliding windows. Returns the RateLimit headers and, when over a limit, Retry-After."""
        windows: list[tuple[str, int, int, bool]] = []
        enforced = {
            "per-second": (1, state.rate_limit_per_second),
            "per-minute": (60, state.rate_limit_per_minute),
        }
        for name, (seconds, limit) in enforced.items():
            if limit is not None:
                windows.append((name, seconds, limit, True))
        for name, seconds, limit in provider.advertised_limits:
            if enforced.get(name, (0, None))[1] is None:
                windows.append((name, seconds, limit, False))
        hits = state.hits
        while hits and (hits[0] <= now - 60 or hits[0] > now):
            hits.popleft()

        def in_window(seconds: int) -> list[float]:
            return [t for t in hits if t > now - seconds]

        retry: int | None = None
        for _name, seconds, limit, is_enforced in windows:
            recent = in_window(seconds)
            if is_enforced and len(recent) >= limit:
                wait = max(1, math.ceil(recent[-limit] + seconds - now))
                retry = wait if retry is None else max(retry, wait)
        if retry is None:
            hits.append(now)
        if not provider.rate_headers or not windows:
            return {}, retry
        items, policies = [], []
        tightest: tuple[int, int, int] | None = None
        partition = hashlib.sha256(state.api_key.encode()).hexdigest()[:16]
        for name, seconds, limit, _ in windows:
            recent = in_window(seconds)
            remaining = max(0, limit - len(recent))
            reset = max(1, math.ceil(recent[0] + seconds - now)) if recent else seconds
            items.append(f'"{name}";r={remaining};t={reset};pk="{partition}"')
            policies.append(f'"{name}";q={limit};w={seconds}')
            if tightest is None or remaining < tightest[1]:
                tightest = (limit, remaining, reset)
        assert tightest is not None
        headers = {
            "RateLimit": ", ".join(items),
            "RateLimit-Policy": ", ".join(policies),
            "RateLimit-Limit": str(tightest[0]),
            "RateLimit-Remaining": str(tightest[1]),
            "RateLimit-Reset": str(tightest[2]),
        }
        return headers, retry

    async def _send(
        self, request: web.Request, reply: Reply, mode: str | None, endpoint: Endpoint
    ) -> web.StreamResponse:
        headers = dict(reply.headers)
        if mode is None or mode in _SHAPE_MODES:
            # Set as a header, so that any content type (with a charset, or odd) goes out as is.
            headers["Content-Type"] = reply.content_type
            if reply.raw is not None:
                return web.Response(status=reply.status, body=reply.raw, headers=headers)
            body = _mutate(reply.body, mode, endpoint) if mode else reply.body
            return web.Response(
                status=reply.status, body=json.dumps(body).encode(), headers=headers
            )
        payload = json.dumps(reply.body).encode()
        if mode == "html":
            return web.Response(body=_HTML_PAGE, content_type="text/html", headers=headers)
        if mode == "invalid_json":
            return web.Response(
                body=payload[: max(1, len(payload) // 2)],
                content_type="application/json",
                headers=headers,
            )
        if mode == "huge_body":
            padded = payload + b" " * (HUGE_BODY_BYTES - len(payload))
            return web.Response(body=padded, content_type="application/json", headers=headers)
        response = web.StreamResponse(status=200, headers=headers)
        response.content_type = "application/json"
        if mode == "reset":
            response.content_length = len(payload)
            await response.prepare(request)
            with contextlib.suppress(ConnectionError):
                await response.write(payload[: len(payload) // 2])
            if request.transport is not None:
                request.transport.abort()
            return response
        # trickle: headers now, then one byte a second, the real body only after a minute.
        await response.prepare(request)
        started = time.monotonic()
        try:
            while time.monotonic() - started < TRICKLE_SECONDS:
                await response.write(b" ")
                if await self._pause(TRICKLE_INTERVAL):
                    break
            await response.write(payload)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    # ------------------------------------------------------------------ control API

    def _add_control_routes(self) -> None:
        r = self.app.router
        r.add_get("/_sim/accounts", self._ctl_list)
        r.add_get("/_sim/accounts/{api_key}", self._ctl_get)
        r.add_put("/_sim/accounts/{api_key}", self._ctl_put)
        r.add_patch("/_sim/accounts/{api_key}", self._ctl_patch)
        r.add_delete("/_sim/accounts/{api_key}", self._ctl_delete)
        r.add_get("/_sim/calls", self._ctl_calls)
        r.add_post("/_sim/reset-calls", self._ctl_reset_calls)
        r.add_get("/_sim/clock", self._ctl_clock)
        r.add_post("/_sim/clock", self._ctl_clock)

    @staticmethod
    async def _json_object(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json() if await request.read() else {}
        except ValueError:
            raise _bad_request("body is not JSON") from None
        if not isinstance(body, dict):
            raise _bad_request("body must be a JSON object")
        return body

    def _one(self, api_key: str) -> web.Response:
        state = self.accounts().get(api_key)
        if state is None:
            return web.json_response({"error": "no such account"}, status=404)
        return web.json_response(state, dumps=_dumps)

    async def _ctl_list(self, _request: web.Request) -> web.Response:
        now = self.now()
        return web.json_response(
            {"now": now, "now_iso": _iso_z(now), "accounts": self.accounts()}, dumps=_dumps
        )

    async def _ctl_get(self, request: web.Request) -> web.Response:
        return self._one(request.match_info["api_key"])

    async def _ctl_put(self, request: web.Request) -> web.Response:
        body = await self._json_object(request)
        provider = body.pop("provider", None)
        if not isinstance(provider, str):
            raise _bad_request('"provider" is required')
        try:
            self.add_account(provider, request.match_info["api_key"], **body)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return self._one(request.match_info["api_key"])

    async def _ctl_patch(self, request: web.Request) -> web.Response:
        body = await self._json_object(request)
        try:
            self.update(request.match_info["api_key"], **body)
        except KeyError:
            return web.json_response({"error": "no such account"}, status=404)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return self._one(request.match_info["api_key"])

    async def _ctl_delete(self, request: web.Request) -> web.Response:
        try:
            self.remove_account(request.match_info["api_key"])
        except KeyError:
            return web.json_response({"error": "no such account"}, status=404)
        return web.Response(status=204)

    async def _ctl_calls(self, _request: web.Request) -> web.Response:
        return web.json_response(self.calls_summary())

    async def _ctl_reset_calls(self, _request: web.Request) -> web.Response:
        self.reset_calls()
        return web.json_response(self.calls_summary())

    async def _ctl_clock(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            body = await self._json_object(request)
            try:
                self.advance(_non_negative(body.get("advance_seconds", 0)))
            except (TypeError, ValueError) as exc:
                raise _bad_request(f"advance_seconds: {exc}") from None
        now = self.now()
        return web.json_response({"now": now, "now_iso": _iso_z(now), "offset": self._offset})


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


# --------------------------------------------------------------------------- thread wrapper


class SimulatorThread:
    """A :class:`Simulator` on its own event loop in a daemon thread (for synchronous tests and
    tests that run the exporter in a subprocess). The pass-throughs are thread-safe: the
    simulator's state sits behind a lock."""

    def __init__(
        self, simulator: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.simulator = simulator or Simulator()
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        result: dict[str, Any] = {}

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                try:
                    start = self.simulator.start(self._host, self._port)
                    result["url"] = loop.run_until_complete(start)
                except BaseException as exc:  # reported to the starting thread
                    result["error"] = exc
                    return
                finally:
                    ready.set()
                loop.run_forever()
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="credits-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if "error" in result:
            self._thread.join()
            self._thread = self._loop = None
            raise RuntimeError("simulator failed to start") from result["error"]
        return str(result["url"])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.simulator.stop(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.simulator.url

    def add_account(self, provider: str, api_key: str, **fields: Any) -> None:
        self.simulator.add_account(provider, api_key, **fields)

    def update(self, api_key: str, **fields: Any) -> None:
        self.simulator.update(api_key, **fields)

    def calls(self, api_key: str | None = None, path: str | None = None) -> int:
        return self.simulator.calls(api_key, path)

    def advance(self, seconds: float) -> None:
        self.simulator.advance(seconds)

    def base_url(self, provider: str) -> str:
        return self.simulator.base_url(provider)

    def accounts(self) -> dict[str, dict[str, Any]]:
        return self.simulator.accounts()

    def reset_calls(self) -> None:
        self.simulator.reset_calls()


# --------------------------------------------------------------------------- command line


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


async def _serve(simulator: Simulator, host: str, port: int) -> None:
    url = await simulator.start(host, port)
    print(url, flush=True)
    for provider in PROVIDERS:
        print(f"{provider}: {simulator.base_url(provider)}", file=sys.stderr, flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m exporter.simulator --listen 127.0.0.1:9967 [--demo]``."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator",
        description="Serve simulated TheirStack, Windsurf, FullEnrich and preset provider APIs.",
    )
    parser.add_argument(
        "--listen",
        type=_parse_listen,
        default=("127.0.0.1", 9967),
        metavar="HOST:PORT",
        help="address to listen on (port 0 picks a free one; default 127.0.0.1:9967)",
    )
    parser.add_argument("--demo", action="store_true", help="seed the demo accounts")
    args = parser.parse_args(argv)
    host, port = args.listen
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Simulator(seed_demo=args.demo), host, port))


if __name__ == "__main__":
    main()
