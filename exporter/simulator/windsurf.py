"""Simulated Windsurf, under ``/windsurf/api/v1``: ``POST /GetTeamCreditBalance``,
``POST /UserPageAnalytics`` and ``POST /CascadeAnalytics`` with the service key in the JSON body,
answers written as protobuf JSON writes them, and each endpoint behind its permission. Prompt
credits burn per day over the users (past the seats' pool, into add-on credits) and the billing
cycle rolls over on its end; every credit burnt goes into a consumption history (15-minute
buckets, in hundredths of a credit) that CascadeAnalytics reports as ``cascade_runs`` rows per
UTC day, model, mode and conversation, optionally lagging behind (upstream data is refreshed
every 3 hours)."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from . import cascade
from .account import SimAccount
from .api import JSON, Call, Endpoint, Reply, SimulatedApi
from .auth import body_key
from .clock import DAY, add_months, iso_z, parse_iso, units, utc_midnight
from .fields import (
    Converter,
    choice,
    non_negative,
    positive_int,
    str_list,
    to_bool,
    to_int,
    to_str,
)

ANALYTICS_SHAPES = ("current", "legacy")


def _user(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"user: expected an object, got {type(value).__name__}")
    user = dict(value)
    user.setdefault("name", "")
    user.setdefault("email", "")
    user["promptCreditsUsed"] = to_int(user.get("promptCreditsUsed", 0))
    user["activeDays"] = to_int(user.get("activeDays", 0))
    user.setdefault("teamStatus", "USER_TEAM_STATUS_APPROVED")
    return user


@dataclass(kw_only=True)
class WindsurfSimAccount(SimAccount):
    provider: ClassVar[str] = "windsurf"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "prompt_credits_per_seat": to_int,
        "num_seats": to_int,
        "add_on_credits_available": to_int,
        "add_on_credits_used": to_int,
        "billing_cycle_start": to_str,
        "billing_cycle_end": to_str,
        "users": lambda v: [_user(u) for u in v],
        "permissions": str_list,
        "burn_prompt_per_day": non_negative,
        "burn_add_on_per_day": non_negative,
        "numbers_as_strings": to_bool,
        "analytics_shape": lambda v: choice(v, ANALYTICS_SHAPES),
        "analytics_lag_seconds": non_negative,
        "cascade_days": cascade.days_field,
        "cascade_lag_seconds": non_negative,
        "cascade_day_form": lambda v: choice(v, cascade.DAY_FORMS),
        "cascade_conversations": positive_int,
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
    cascade_lag_seconds: float = 0.0
    """CascadeAnalytics leaves out the 15-minute buckets that ended less than this long ago
    (upstream refreshes analytics every 3 hours: up to 10800)."""
    cascade_day_form: str = "timestamp"
    """See :data:`~exporter.simulator.cascade.DAY_FORMS`."""
    cascade_conversations: int = 1
    """Conversations per 3 hours of a day with consumption, a row per model each: a larger
    team's answer (about 200 bytes a row: 60 pass 1 MiB over 30 busy days)."""
    cascade_buckets: dict[int, int] = field(default_factory=dict)
    """Consumption history: UTC start of a 15-minute bucket -> hundredths of a credit consumed
    in it (prompt and add-on credits alike)."""
    previous_cycle: dict[str, Any] | None = None
    """The cycle before the last reset, as analytics reports it while it lags."""
    previous_cycle_until: float = 0.0
    next_user: int = 0

    def init_defaults(self, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC)
        start = datetime(today.year, today.month, 1, tzinfo=UTC)
        self.billing_cycle_start = iso_z(start.timestamp())
        self.billing_cycle_end = iso_z(add_months(start, 1).timestamp())

    def set_field(self, name: str, value: Any) -> None:
        if name != "cascade_days":
            setattr(self, name, value)
            return
        for day, cents in value.items():
            start = int(utc_midnight(day))
            for key in [k for k in self.cascade_buckets if start <= k < start + int(DAY)]:
                del self.cascade_buckets[key]
            if cents:
                self.cascade_buckets[start + int(DAY) // 2] = cents

    def snapshot(self) -> dict[str, Any]:
        out = super().snapshot()
        by_day: dict[str, float] = {}
        for start in sorted(self.cascade_buckets):
            day = datetime.fromtimestamp(start, UTC).date().isoformat()
            by_day[day] = by_day.get(day, 0) + self.cascade_buckets[start] / 100
        out["cascade_days"] = by_day
        return out

    def advance_state(self, t0: float, t1: float) -> None:
        if self.burn_prompt_per_day <= 0 and self.burn_add_on_per_day <= 0:
            self._advance(t0, t1)  # cycles still roll over
            return
        start = math.floor(t0 / cascade.BUCKET) * cascade.BUCKET
        while start < t1:
            self._advance(max(t0, start), min(t1, start + cascade.BUCKET))
            start += cascade.BUCKET

    def _advance(self, t0: float, t1: float) -> None:
        while True:
            end = parse_iso(self.billing_cycle_end)
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
        """Burn [t0, t1) (within one history bucket): prompt credits to the users while the
        seats' pool lasts, the rest and the add-on burn from add-on credits while they last;
        what was burnt goes into the consumption history."""
        prompt = units(self.burn_prompt_per_day, self.burn_anchor, t0, t1)
        add_on = units(self.burn_add_on_per_day, self.burn_anchor, t0, t1)
        to_users = 0
        if prompt and self.users:
            pool_left = self.prompt_credits_per_seat * self.num_seats - sum(
                u["promptCreditsUsed"] for u in self.users
            )
            to_users = max(0, min(prompt, pool_left))
            share, extra = divmod(to_users, len(self.users))
            for i in range(len(self.users)):
                user = self.users[(self.next_user + i) % len(self.users)]
                user["promptCreditsUsed"] += share + (1 if i < extra else 0)
            self.next_user = (self.next_user + extra) % len(self.users)
        add_on += prompt - to_users
        from_add_on = min(add_on, max(0, self.add_on_credits_available - self.add_on_credits_used))
        self.add_on_credits_used += from_add_on
        if to_users + from_add_on:
            bucket = math.floor(t0 / cascade.BUCKET) * cascade.BUCKET
            cents = (to_users + from_add_on) * 100
            self.cascade_buckets[bucket] = self.cascade_buckets.get(bucket, 0) + cents

    def _roll_cycle(self) -> bool:
        """Start the next billing cycle; False when the cycle dates make no sense."""
        start, end = parse_iso(self.billing_cycle_start), parse_iso(self.billing_cycle_end)
        if start is None or end is None or end <= start:
            return False
        months = (end.year - start.year) * 12 + end.month - start.month
        if months > 0 and add_months(start, months) == end:
            new_end = add_months(end, months)
        else:
            new_end = end + (end - start)
        self.previous_cycle = {
            "start": self.billing_cycle_start,
            "end": self.billing_cycle_end,
            "users": copy.deepcopy(self.users),
        }
        self.previous_cycle_until = end.timestamp() + self.analytics_lag_seconds
        self.billing_cycle_start = iso_z(end.timestamp())
        self.billing_cycle_end = iso_z(new_end.timestamp())
        # "recomputed at the start of every billing cycle based on what was consumed"
        self.add_on_credits_available = max(
            0, self.add_on_credits_available - self.add_on_credits_used
        )
        self.add_on_credits_used = 0
        for user in self.users:
            user["promptCreditsUsed"] = 0
            user["activeDays"] = 0
        return True


def _error(status: int, kind: str | None) -> JSON:
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


def _forbidden(acct: WindsurfSimAccount, permission: str) -> Reply | None:
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


def _balance(acct: WindsurfSimAccount, _call: Call) -> Reply:
    denied = _forbidden(acct, "Billing Read")
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


def _analytics(acct: WindsurfSimAccount, call: Call) -> Reply:
    denied = _forbidden(acct, "Teams Read-Only")
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
        row.setdefault("lastUpdateTime", iso_z(acct.last_settle))
        stats.append(_protobuf_json(row, acct.numbers_as_strings))
    body: dict[str, Any] = {"userTableStats": stats}
    if acct.analytics_shape == "current":
        body |= {"billingCycleStart": start, "billingCycleEnd": end}
    return Reply(body=_protobuf_json(body, acct.numbers_as_strings))


def _cascade(acct: WindsurfSimAccount, call: Call) -> Reply:
    denied = _forbidden(acct, "Teams Read-Only")
    if denied is not None:
        return denied

    def rows(first: date, last: date) -> list[dict[str, Any]]:
        lag = acct.cascade_lag_seconds
        until = call.now - lag if lag else None
        found = cascade.runs(
            acct.cascade_buckets,
            first,
            last,
            acct.cascade_day_form,
            until,
            acct.cascade_conversations,
        )
        return [_protobuf_json(row, True) for row in found]

    status, body = cascade.answer(call.body, call.now, rows)
    return Reply(status, body)


API = SimulatedApi(
    name="windsurf",
    mount="/windsurf/api/v1",
    account=WindsurfSimAccount,
    endpoints=(
        Endpoint(
            "POST",
            "/GetTeamCreditBalance",
            _balance,
            "promptCreditsPerSeat",
            ("promptCreditsPerSeat", "numSeats", "addOnCreditsAvailable", "addOnCreditsUsed"),
        ),
        Endpoint(
            "POST",
            "/UserPageAnalytics",
            _analytics,
            "userTableStats",
            ("promptCreditsUsed", "activeDays"),
        ),
        Endpoint(
            "POST",
            "/CascadeAnalytics",
            _cascade,
            "promptsUsed",
            ("promptsUsed", "messagesSent"),
        ),
    ),
    credential=body_key("service_key"),
    error=_error,
    json_body=True,
)
