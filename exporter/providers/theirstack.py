"""TheirStack: ``GET /v0/billing/credit-balance`` and ``GET /v0/teams/credits_consumption``.

Pools ``api`` and ``ui``. The balance fields are the balance itself (paid credits roll over), so
remaining is ``api_credits``/``ui_credits`` as given, never ``credits - used``; it may be negative
(overage). Each endpoint's values stand on their own.

Day buckets: ``period_start`` is read by :func:`bucket_day` (the rule is in docs/providers.md).
A day of the requested range that the answer leaves out consumed 0; a bucket dated later than
tomorrow in the account's timezone is ignored (and noted), so it can never become the baseline
of the consumed-credits counter.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from ..accounts import AccountBase, Strict
from ..http import AccountClient
from ..model import PoolValues, Reading
from ..redaction import quote
from .base import (
    Provider,
    bad,
    check_number,
    optional_timestamp,
    require_list,
    require_number,
    require_object,
)

POOLS = ("api", "ui")
WINDOWS = (("1d", 1), ("7d", 7), ("30d", 30))
#: Future days named in the note about ignored buckets (the rest are counted).
NOTE_DAYS = 3


class TheirStackConsumption(Strict):
    enabled: bool = True
    timezone: str = "UTC"
    lookback_days: int = Field(default=30, ge=7, le=365)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown timezone "{value}" (use an IANA name)') from None
        return value


class TheirStackAccount(AccountBase):
    provider: Literal["theirstack"]
    consumption: TheirStackConsumption = Field(default_factory=TheirStackConsumption)


def error_message(data: Any) -> str | None:
    title = data["error"]["title"]
    return str(title) if title is not None else None


def bucket_day(value: Any, tz: zoneinfo.ZoneInfo, where: str) -> date:
    """The day, in the account's timezone ``tz``, that a daily bucket's ``period_start`` names.

    The API is asked for ``tz``'s days; servers write their start either as the instant of the
    local midnight (``2026-03-10T00:00:00-05:00`` or ``2026-03-10T05:00:00Z``) or as the local
    date wrongly labelled UTC (``2026-03-10T00:00:00Z``). A start written at midnight that is
    not midnight in ``tz`` is the second form: its own date is the day. Any other start is an
    instant: the day is its date in ``tz`` (which also covers days that do not begin at
    midnight, where a DST change falls at 00:00). A start without an offset is local.
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


class TheirStack(Provider):
    name = "theirstack"
    default_base_url = "https://api.theirstack.com"
    default_rate_limit = 4.0  # documented: 4 requests/s per key (paid and free tiers)

    account: TheirStackAccount

    def __init__(self, account: TheirStackAccount) -> None:
        super().__init__(account)
        self.tz = zoneinfo.ZoneInfo(account.consumption.timezone)

    @property
    def endpoints(self) -> tuple[str, ...]:
        if self.account.consumption.enabled:
            return ("balance", "consumption")
        return ("balance",)

    async def fetch(self, endpoint: str, client: AccountClient) -> Reading:
        headers = {"Authorization": f"Bearer {self.account.secret}"}
        if endpoint == "balance":
            resp = await client.request_json(
                "GET",
                f"{self.base_url}/v0/billing/credit-balance",
                headers=headers,
                error_message=error_message,
            )
            return self.parse_balance(resp.data)
        now = datetime.now(self.tz)
        start = (now - timedelta(days=self.account.consumption.lookback_days - 1)).date()
        resp = await client.request_json(
            "GET",
            f"{self.base_url}/v0/teams/credits_consumption",
            headers=headers,
            params={
                "start_datetime": f"{start.isoformat()}T00:00:00",
                "timezone": self.account.consumption.timezone,
            },
            error_message=error_message,
        )
        return self.parse_consumption(resp.data, now)

    @staticmethod
    def parse_balance(data: Any) -> Reading:
        obj = require_object(data)
        pools = {
            pool: PoolValues(
                # A balance can go below 0 (use beyond it before a top-up): published as is.
                remaining=require_number(obj, f"{pool}_credits", allow_negative=True),
                used=require_number(obj, f"used_{pool}_credits"),
            )
            for pool in POOLS
        }
        return Reading(pools=pools, expiry_timestamp=optional_timestamp(obj, "earliest_expiration"))

    def parse_consumption(self, data: Any, now: datetime) -> Reading:
        """Daily buckets -> per-pool windows (calendar days in the account's timezone, today
        included) and the raw day history the store turns into consumed-credits counters:
        every day of the requested range, 0 for a day the answer leaves out."""
        buckets = require_list(data)
        today = now.astimezone(self.tz).date()
        lookback = self.account.consumption.lookback_days
        first_day = today - timedelta(days=lookback - 1)
        days = [(first_day + timedelta(days=n)).isoformat() for n in range(lookback)]
        daily: dict[str, dict[str, float]] = {pool: dict.fromkeys(days, 0.0) for pool in POOLS}
        future: set[date] = set()
        for i, item in enumerate(buckets):
            where = f"[{i}]."
            obj = require_object(item, f"[{i}]")
            day = bucket_day(obj.get("period_start"), self.tz, f"{where}period_start")
            values = {
                pool: check_number(
                    obj.get(f"{pool}_credits_consumed"), f"{where}{pool}_credits_consumed"
                )
                for pool in POOLS
            }
            if (day - today).days > 1:
                future.add(day)
                continue
            key = day.isoformat()
            for pool in POOLS:
                # Two buckets for one local day (e.g. around a DST change) add up.
                daily[pool][key] = daily[pool].get(key, 0.0) + values[pool]
        consumption: dict[str, dict[str, float]] = {}
        for pool in POOLS:
            windows: dict[str, float] = {}
            for label, span in WINDOWS:
                if span > lookback:
                    continue
                first = (today - timedelta(days=span - 1)).isoformat()
                windows[label] = sum(
                    v for k, v in daily[pool].items() if first <= k <= today.isoformat()
                )
            consumption[pool] = windows
        notes = {}
        if future:
            shown = ", ".join(d.isoformat() for d in sorted(future)[:NOTE_DAYS])
            more = f" and {len(future) - NOTE_DAYS} more" if len(future) > NOTE_DAYS else ""
            notes["consumption"] = (
                f"ignored day buckets dated after tomorrow in {self.tz.key}: {shown}{more}"
            )
        return Reading(consumption=consumption, daily_consumption=daily, notes=notes)
