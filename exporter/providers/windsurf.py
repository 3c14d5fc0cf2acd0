"""Windsurf (formerly Codeium): ``POST /GetTeamCreditBalance`` and, with ``prompt_usage``,
``POST /UserPageAnalytics``. The service key travels in the JSON body, never in a header.

Pools: ``prompt`` (limit = promptCreditsPerSeat x numSeats; used and remaining only from the
analytics endpoint) and ``add_on`` (limit = addOnCreditsAvailable, used = addOnCreditsUsed,
remaining = limit - used). Both describe the current billing cycle only.

The API speaks protobuf JSON (Connect): a field at its zero value is left out and an int64 may be
written as a string. So an omitted numeric field is 0, a number written as a string is a number,
and a field that is present with another type (null included: the encoder never writes one) is
a ``bad_response``. An ``"error"`` that is empty is protobuf's empty string: no error.

Prompt usage is known only from an analytics answer that names its billing cycle
(``billingCycleStart``/``billingCycleEnd``), and it is combined with the balance's limit only
when both name the same cycle: right after a cycle reset the balance is on the new cycle while
analytics (refreshed every 3 hours upstream) still reports the old one. Otherwise used and
remaining are absent and the reading's notes say why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from ..accounts import AccountBase
from ..http import AccountClient
from ..model import PoolValues, Reading, Reason
from .base import (
    Provider,
    bad,
    check_number,
    optional_timestamp,
    require_list,
    require_object,
)

_AUTH_MESSAGES = ("invalid service key", "insufficient permission", "unauthorized", "forbidden")
_BALANCE_FIELDS = ("promptCreditsPerSeat", "numSeats", "addOnCreditsAvailable", "addOnCreditsUsed")
_CYCLE_FIELDS = ("billingCycleStart", "billingCycleEnd")

NO_CYCLE_NOTE = (
    "prompt usage not reported: the UserPageAnalytics answer names no billing cycle "
    "(an older API version), so its usage cannot be tied to the balance's cycle"
)


class WindsurfAccount(AccountBase):
    provider: Literal["windsurf"]
    prompt_usage: bool = False


def error_text(data: Any) -> str | None:
    """The ``error`` of a body, if it says anything (protobuf writes no error as ``""``)."""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, str) and err.strip():
            return err
    return None


def error_message(data: Any) -> str | None:
    return error_text(data)


def classify(status: int, data: Any) -> Reason | None:
    """Windsurf does not document its auth status codes: trust the error text."""
    text = error_text(data)
    if text is None:
        return None
    if any(m in text.lower() for m in _AUTH_MESSAGES):
        return Reason.AUTH
    # An error on a 2xx is still an error.
    return Reason.BAD_RESPONSE if status < 400 else None


def proto_number(obj: Mapping[str, Any], key: str, where: str = "") -> float:
    """A protobuf-JSON numeric field: left out means 0; a number or a number as a string."""
    if key not in obj:
        return 0.0
    return check_number(obj[key], f"{where}{key}", strings=True)


def _cycle(reading: Reading) -> tuple[float, float] | None:
    start, end = reading.cycle_start_timestamp, reading.cycle_end_timestamp
    return None if start is None or end is None else (start, end)


def _same_cycle(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < 1 and abs(a[1] - b[1]) < 1


def _describe(cycle: tuple[float, float] | None) -> str:
    if cycle is None:
        return "names no billing cycle"
    start, end = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in cycle)
    return f"is on the cycle {start} to {end}"


class Windsurf(Provider):
    name = "windsurf"
    default_base_url = "https://server.codeium.com/api/v1"

    account: WindsurfAccount

    @property
    def endpoints(self) -> tuple[str, ...]:
        if self.account.prompt_usage:
            return ("balance", "user_analytics")
        return ("balance",)

    async def fetch(self, endpoint: str, client: AccountClient) -> Reading:
        path = "GetTeamCreditBalance" if endpoint == "balance" else "UserPageAnalytics"
        resp = await client.request_json(
            "POST",
            f"{self.base_url}/{path}",
            json_body={"service_key": self.account.secret},
            error_message=error_message,
            classify=classify,
        )
        if endpoint == "balance":
            return self.parse_balance(resp.data)
        return self.parse_analytics(resp.data)

    @staticmethod
    def parse_balance(data: Any) -> Reading:
        obj = require_object(data)
        if not any(key in obj for key in (*_BALANCE_FIELDS, *_CYCLE_FIELDS)):
            # Zero values may be left out, but not all of them and the cycle too: that is not
            # a balance (e.g. an empty object from a proxy).
            raise bad(f"none of the balance fields is in the answer ({', '.join(_BALANCE_FIELDS)})")
        per_seat, seats, add_on_limit, add_on_used = (proto_number(obj, k) for k in _BALANCE_FIELDS)
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
        # An empty repeated field is left out; null or any other type is wrong.
        users = (
            require_list(obj["userTableStats"], "userTableStats") if "userTableStats" in obj else []
        )
        rows = [require_object(user, f"userTableStats[{i}]") for i, user in enumerate(users)]
        start = optional_timestamp(obj, "billingCycleStart")
        end = optional_timestamp(obj, "billingCycleEnd")
        if start is None or end is None:
            return Reading(
                pools={"prompt": PoolValues()},
                cycle_start_timestamp=start,
                cycle_end_timestamp=end,
                notes={"prompt": NO_CYCLE_NOTE},
            )
        used = sum(
            proto_number(row, "promptCreditsUsed", f"userTableStats[{i}].")
            for i, row in enumerate(rows)
        )
        return Reading(
            pools={"prompt": PoolValues(used=used)},
            cycle_start_timestamp=start,
            cycle_end_timestamp=end,
        )

    def derive(self, merged: Reading, readings: Mapping[str, Reading]) -> Reading:
        """Prompt remaining = limit - used, when the balance and the analytics name the same
        billing cycle; with another cycle on either side, only the balance's limit stays."""
        balance, analytics = readings.get("balance"), readings.get("user_analytics")
        prompt = merged.pools.get("prompt")
        if balance is None or analytics is None or prompt is None:
            return merged  # one endpoint's values alone
        if prompt.limit is None or prompt.used is None:
            return merged
        balance_cycle, analytics_cycle = _cycle(balance), _cycle(analytics)
        pools = dict(merged.pools)
        if balance_cycle and analytics_cycle and _same_cycle(balance_cycle, analytics_cycle):
            pools["prompt"] = PoolValues(
                limit=prompt.limit, used=prompt.used, remaining=prompt.limit - prompt.used
            )
            return dataclasses.replace(merged, pools=pools)
        pools["prompt"] = PoolValues(limit=prompt.limit)
        note = (
            f"prompt usage withheld until analytics reaches the balance's billing cycle: the "
            f"balance {_describe(balance_cycle)}, analytics {_describe(analytics_cycle)} "
            "(analytics is refreshed about every 3 hours)"
        )
        return dataclasses.replace(merged, pools=pools, notes={**merged.notes, "prompt": note})
