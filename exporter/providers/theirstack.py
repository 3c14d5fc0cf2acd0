"""TheirStack: ``GET /v0/billing/credit-balance`` and ``GET /v0/teams/credits_consumption``.

Pools ``api`` and ``ui``. The balance fields are the balance itself (paid credits roll over), so
remaining is ``api_credits``/``ui_credits`` as given, never ``credits - used``; it may be negative
(overage). Each endpoint's values stand on their own.

Day buckets: ``period_start`` is read by :func:`~exporter.providers.daily.bucket_day` (the rule
is in docs/providers.md) into a :class:`~exporter.providers.daily.DailyHistory`: a day of the
requested range that the answer leaves out consumed 0; a bucket dated later than tomorrow in the
account's timezone is ignored (and noted), so it can never become the baseline of the
consumed-credits counter.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from ..accounts import AccountBase, Strict
from ..credentials import Credential, bearer
from ..http import AccountClient
from ..model import PoolValues, Reading
from .base import (
    Provider,
    check_number,
    optional_timestamp,
    require_list,
    require_number,
    require_object,
)
from .daily import DailyHistory, bucket_day

POOLS = ("api", "ui")


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


CONSUMPTION_DEFAULT = TheirStackConsumption()


class TheirStackAccount(AccountBase):
    provider: Literal["theirstack"]
    #: Without a ``consumption`` block, the defaults, shared (immutable).
    consumption: TheirStackConsumption = Field(default_factory=lambda: CONSUMPTION_DEFAULT)

    def pool_names(self) -> tuple[str, ...]:
        return POOLS


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

    @classmethod
    def credential(cls, account: AccountBase) -> Credential:
        return bearer(account.secret)

    @property
    def endpoints(self) -> tuple[str, ...]:
        if self.account.consumption.enabled:
            return ("balance", "consumption")
        return ("balance",)

    async def fetch(self, endpoint: str, client: AccountClient) -> Reading:
        headers = {"Authorization": self.credential(self.account).value}
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
        history = DailyHistory(
            POOLS, now.astimezone(self.tz).date(), self.account.consumption.lookback_days
        )
        for i, item in enumerate(buckets):
            where = f"[{i}]."
            obj = require_object(item, f"[{i}]")
            day = bucket_day(obj.get("period_start"), self.tz, f"{where}period_start")
            history.add(
                day,
                {
                    pool: check_number(
                        obj.get(f"{pool}_credits_consumed"), f"{where}{pool}_credits_consumed"
                    )
                    for pool in POOLS
                },
            )
        return history.reading(self.tz.key)
