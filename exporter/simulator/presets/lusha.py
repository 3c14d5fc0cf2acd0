"""Simulated Lusha, under ``/lusha``: ``GET /v3/account/usage`` with the key in ``api_key``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import header_key
from ..fields import Converter, to_int


@dataclass(kw_only=True)
class LushaSimAccount(SimAccount):
    provider: ClassVar[str] = "lusha"
    FIELDS: ClassVar[dict[str, Converter]] = {"total": to_int, "used": to_int}

    total: int = 0
    used: int = 0


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        return {"statusCode": 401, "message": "Unauthorized"}
    message = "Too Many Requests" if status == 429 else f"HTTP {status}"
    return {"statusCode": status, "message": message}


def _usage(acct: LushaSimAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "credits": {
                "total": acct.total,
                "used": acct.used,
                "remaining": max(0, acct.total - acct.used),
            },
            "rateLimits": {
                "daily": {"limit": 5000, "resetsAt": "2026-03-31T00:00:00.000Z"},
                "hourly": None,
                "minute": None,
            },
            "plan": {
                "category": "professional",
                "renewalType": "annual",
                "startDate": "2026-01-01T00:00:00.000Z",
                "endDate": "2027-01-01T00:00:00.000Z",
            },
            "pricing": {},
        }
    )


API = SimulatedApi(
    name="lusha",
    mount="/lusha",
    account=LushaSimAccount,
    endpoints=(
        Endpoint("GET", "/v3/account/usage", _usage, "remaining", ("total", "used", "remaining")),
    ),
    credential=header_key("api_key"),
    error=_error,
)
