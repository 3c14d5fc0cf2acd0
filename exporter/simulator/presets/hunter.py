"""Simulated Hunter, under ``/hunter/v2``: ``GET /account`` with the key in ``?api_key=``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import query_key
from ..clock import add_months
from ..fields import Converter, opt_str, to_int, to_str


def _meter(value: Any) -> dict[str, int] | None:
    """A Hunter request meter ``{"used": int, "available": int, "remaining": int}`` (remaining
    optional: older answers lack it); None leaves the meter out."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"used", "available", "remaining"}:
        raise ValueError('expected {"used": int, "available": int[, "remaining": int]} or null')
    meter = {"used": to_int(value.get("used", 0)), "available": to_int(value.get("available", 0))}
    if "remaining" in value:
        meter["remaining"] = to_int(value["remaining"])
    return meter


@dataclass(kw_only=True)
class HunterSimAccount(SimAccount):
    provider: ClassVar[str] = "hunter"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "plan_name": to_str,
        "reset_date": opt_str,
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
        self.reset_date = add_months(today.replace(day=1), 1).date().isoformat()


def _error(status: int, kind: str | None) -> JSON:
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


def _account(acct: HunterSimAccount, _call: Call) -> Reply:
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


API = SimulatedApi(
    name="hunter",
    mount="/hunter/v2",
    account=HunterSimAccount,
    endpoints=(Endpoint("GET", "/account", _account, "requests", ("used", "available")),),
    credential=query_key("api_key"),
    error=_error,
)
