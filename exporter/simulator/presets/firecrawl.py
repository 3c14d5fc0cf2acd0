"""Simulated Firecrawl, under ``/firecrawl``: ``GET /v2/team/credit-usage`` with a Bearer key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import bearer
from ..clock import add_months, iso_z
from ..fields import Converter, opt_str, to_float, to_int


@dataclass(kw_only=True)
class FirecrawlSimAccount(SimAccount):
    """``remaining_credits`` counts coupons and packs, ``plan_credits`` the plan alone: the
    first may exceed the second. The billing period dates are nullable."""

    provider: ClassVar[str] = "firecrawl"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "remaining_credits": to_float,
        "plan_credits": to_int,
        "billing_period_start": opt_str,
        "billing_period_end": opt_str,
    }

    remaining_credits: float = 0.0
    plan_credits: int = 500
    billing_period_start: str | None = None
    billing_period_end: str | None = None

    def init_defaults(self, now: float) -> None:
        start = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0)
        self.billing_period_start = iso_z(start.timestamp())
        self.billing_period_end = iso_z(add_months(start, 1).timestamp() - 1)


def _error(status: int, kind: str | None) -> JSON:
    messages = {
        401: "Unauthorized: Invalid token",
        402: "Payment Required: Insufficient credits",
        404: "Could not find credit usage information",
        429: "Rate limit exceeded",
    }
    message = messages[401] if kind is not None else messages.get(status)
    return {"success": False, "error": message or "Internal server error"}


def _credit_usage(acct: FirecrawlSimAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "success": True,
            "data": {
                "remainingCredits": acct.remaining_credits,
                "planCredits": acct.plan_credits,
                "billingPeriodStart": acct.billing_period_start,
                "billingPeriodEnd": acct.billing_period_end,
            },
        }
    )


API = SimulatedApi(
    name="firecrawl",
    mount="/firecrawl",
    account=FirecrawlSimAccount,
    endpoints=(
        Endpoint(
            "GET",
            "/v2/team/credit-usage",
            _credit_usage,
            "remainingCredits",
            ("remainingCredits", "planCredits"),
        ),
    ),
    credential=bearer,
    error=_error,
)
