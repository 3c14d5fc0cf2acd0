"""Windsurf (formerly Codeium): ``POST /GetTeamCreditBalance`` and, with ``prompt_usage``,
``POST /UserPageAnalytics``. The service key travels in the JSON body, never in a header.

Pools: ``prompt`` (limit = promptCreditsPerSeat x numSeats; used and remaining only from the
analytics endpoint) and ``add_on`` (limit = addOnCreditsAvailable, used = addOnCreditsUsed,
remaining = limit - used). Both describe the current billing cycle only.
"""

from __future__ import annotations

from typing import Any

from ..config import WindsurfAccount
from ..http import HttpClient
from ..model import PoolValues, Reading, Reason
from .base import (
    Provider,
    check_number,
    optional_timestamp,
    require_list,
    require_number,
    require_object,
)

_AUTH_MESSAGES = ("invalid service key", "insufficient permission", "unauthorized", "forbidden")


def error_message(data: Any) -> str | None:
    err = data["error"]
    return str(err) if err is not None else None


def classify(status: int, data: Any) -> Reason | None:
    """Windsurf does not document its auth status codes: trust the error text."""
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        text = data["error"].lower()
        if any(m in text for m in _AUTH_MESSAGES):
            return Reason.AUTH
        if status < 400:
            # An error body on a 2xx is still an error.
            return Reason.BAD_RESPONSE
    return None


class Windsurf(Provider):
    name = "windsurf"
    default_base_url = "https://server.codeium.com/api/v1"

    account: WindsurfAccount

    @property
    def endpoints(self) -> tuple[str, ...]:
        if self.account.prompt_usage:
            return ("balance", "user_analytics")
        return ("balance",)

    async def fetch(self, endpoint: str, http: HttpClient) -> Reading:
        path = "GetTeamCreditBalance" if endpoint == "balance" else "UserPageAnalytics"
        resp = await http.request_json(
            "POST",
            f"{self.base_url}/{path}",
            json_body={"service_key": self.account.secret},
            timeout=self.account.effective_timeout,
            secret=self.account.secret,
            error_message=error_message,
            classify=classify,
        )
        if endpoint == "balance":
            return self.parse_balance(resp.data)
        return self.parse_analytics(resp.data)

    @staticmethod
    def parse_balance(data: Any) -> Reading:
        obj = require_object(data)
        per_seat = require_number(obj, "promptCreditsPerSeat")
        seats = require_number(obj, "numSeats")
        add_on_limit = require_number(obj, "addOnCreditsAvailable")
        add_on_used = require_number(obj, "addOnCreditsUsed")
        return Reading(
            pools={
                "prompt": PoolValues(limit=per_seat * seats),
                "add_on": PoolValues(
                    limit=add_on_limit, used=add_on_used, remaining=add_on_limit - add_on_used
                ),
            },
            seats=seats,
            cycle_start_timestamp=optional_timestamp(obj, "billingCycleStart"),
            cycle_end_timestamp=optional_timestamp(obj, "billingCycleEnd"),
        )

    @staticmethod
    def parse_analytics(data: Any) -> Reading:
        obj = require_object(data)
        if "userTableStats" not in obj:
            # An empty team may leave the list out; null or any other type is wrong.
            users: list[Any] = []
        else:
            users = require_list(obj["userTableStats"], "userTableStats")
        used = 0.0
        for i, user in enumerate(users):
            row = require_object(user, f"userTableStats[{i}]")
            value = row.get("promptCreditsUsed", 0)
            used += check_number(value, f"userTableStats[{i}].promptCreditsUsed")
        return Reading(
            pools={"prompt": PoolValues(used=used)},
            cycle_start_timestamp=optional_timestamp(obj, "billingCycleStart"),
            cycle_end_timestamp=optional_timestamp(obj, "billingCycleEnd"),
        )

    def derive(self, pools: dict[str, PoolValues]) -> dict[str, PoolValues]:
        prompt = pools.get("prompt")
        if prompt is not None and prompt.limit is not None and prompt.used is not None:
            pools["prompt"] = PoolValues(
                limit=prompt.limit, used=prompt.used, remaining=prompt.limit - prompt.used
            )
        return pools
