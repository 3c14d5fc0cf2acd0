"""TheirStack: ``GET /v0/billing/credit-balance`` and ``GET /v0/teams/credits_consumption``.

Pools ``api`` and ``ui``. The balance fields are the balance itself (paid credits roll over), so
remaining is ``api_credits``/``ui_credits`` as given, never ``credits - used``.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from ..config import TheirStackAccount
from ..http import HttpClient
from ..model import PoolValues, Reading
from ..redaction import excerpt
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


def error_message(data: Any) -> str | None:
    title = data["error"]["title"]
    return str(title) if title is not None else None


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

    async def fetch(self, endpoint: str, http: HttpClient) -> Reading:
        headers = {"Authorization": f"Bearer {self.account.secret}"}
        if endpoint == "balance":
            resp = await http.request_json(
                "GET",
                f"{self.base_url}/v0/billing/credit-balance",
                headers=headers,
                timeout=self.account.effective_timeout,
                secret=self.account.secret,
                error_message=error_message,
            )
            return self.parse_balance(resp.data)
        now = datetime.now(self.tz)
        start = (now - timedelta(days=self.account.consumption.lookback_days - 1)).date()
        resp = await http.request_json(
            "GET",
            f"{self.base_url}/v0/teams/credits_consumption",
            headers=headers,
            params={
                "start_datetime": f"{start.isoformat()}T00:00:00",
                "timezone": self.account.consumption.timezone,
            },
            timeout=self.account.effective_timeout,
            secret=self.account.secret,
            error_message=error_message,
        )
        return self.parse_consumption(resp.data, now)

    @staticmethod
    def parse_balance(data: Any) -> Reading:
        obj = require_object(data)
        pools = {
            pool: PoolValues(
                remaining=require_number(obj, f"{pool}_credits"),
                used=require_number(obj, f"used_{pool}_credits"),
            )
            for pool in POOLS
        }
        return Reading(pools=pools, expiry_timestamp=optional_timestamp(obj, "earliest_expiration"))

    def parse_consumption(self, data: Any, now: datetime) -> Reading:
        """Daily buckets -> per-pool windows (calendar days in the account's timezone, today
        included) and the raw day history the store turns into ``credits_consumed_total``."""
        buckets = require_list(data)
        today = now.astimezone(self.tz).date()
        daily: dict[str, dict[str, float]] = {pool: {today.isoformat(): 0.0} for pool in POOLS}
        for i, item in enumerate(buckets):
            where = f"[{i}]."
            obj = require_object(item, f"[{i}]")
            start = obj.get("period_start")
            if not isinstance(start, str):
                raise bad(f"{where}period_start should be a date-time string")
            try:
                dt = datetime.fromisoformat(start.replace("Z", "+00:00"))
                day = dt.replace(tzinfo=self.tz) if dt.tzinfo is None else dt.astimezone(self.tz)
            except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out
                raise bad(
                    f'{where}period_start is not a valid date-time ("{excerpt(start)}")'
                ) from None
            key = day.date().isoformat()
            for pool in POOLS:
                value = check_number(
                    obj.get(f"{pool}_credits_consumed"), f"{where}{pool}_credits_consumed"
                )
                # Two buckets for one local day (e.g. around a DST change) add up.
                daily[pool][key] = daily[pool].get(key, 0.0) + value
        consumption: dict[str, dict[str, float]] = {}
        lookback = self.account.consumption.lookback_days
        for pool in POOLS:
            windows: dict[str, float] = {}
            for label, days in WINDOWS:
                if days > lookback:
                    continue
                first = (today - timedelta(days=days - 1)).isoformat()
                windows[label] = sum(
                    v for k, v in daily[pool].items() if first <= k <= today.isoformat()
                )
            consumption[pool] = windows
        return Reading(consumption=consumption, daily_consumption=daily)
