"""Simulated SerpApi, under ``/serpapi``: ``GET /account.json`` with the key in ``?api_key=``;
the answer echoes the key, as the real one does. Searches burn per day: the plan's first, then
the extra credits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import query_key
from ..clock import add_months, units
from ..fields import Converter, non_negative, opt_str, to_bool, to_int


@dataclass(kw_only=True)
class SerpApiSimAccount(SimAccount):
    """``plan_renewal_date`` None: an account without a monthly plan (null in the answer);
    ``legacy``: the older answer, without ``plan_renewal_date`` and the hourly counters."""

    provider: ClassVar[str] = "serpapi"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "searches_per_month": to_int,
        "this_month_usage": to_int,
        "extra_credits": to_int,
        "plan_renewal_date": opt_str,
        "legacy": to_bool,
        "burn_searches_per_day": non_negative,
    }

    searches_per_month: int = 250
    this_month_usage: int = 0
    extra_credits: int = 0
    plan_renewal_date: str | None = None
    legacy: bool = False
    burn_searches_per_day: float = 0.0

    def advance_state(self, t0: float, t1: float) -> None:
        searches = units(self.burn_searches_per_day, self.burn_anchor, t0, t1)
        from_plan = min(searches, max(0, self.searches_per_month - self.this_month_usage))
        self.this_month_usage += from_plan
        self.extra_credits = max(0, self.extra_credits - (searches - from_plan))

    def init_defaults(self, now: float) -> None:
        today = datetime.fromtimestamp(now, UTC)
        self.plan_renewal_date = add_months(today.replace(day=1), 1).date().isoformat()


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        message = "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"
    elif status == 429:
        message = "Your account has run out of searches."
    else:
        message = "Something went wrong."
    return {"error": message}


def _account(acct: SerpApiSimAccount, _call: Call) -> Reply:
    left = max(0, acct.searches_per_month - acct.this_month_usage)
    body: dict[str, JSON] = {
        "account_id": "5ac54d6adefb2f1dba1663f5",
        "api_key": acct.api_key,
        "account_email": "demo@example.com",
        "plan_id": "bigdata",
        "plan_name": "Big Data Plan",
        "searches_per_month": acct.searches_per_month,
        "plan_searches_left": left,
        "extra_credits": acct.extra_credits,
        "total_searches_left": left + acct.extra_credits,
        "this_month_usage": acct.this_month_usage,
        "last_hour_searches": 42,
        "account_rate_limit_per_hour": 6000,
    }
    if not acct.legacy:
        body |= {
            "account_status": "Active",
            "plan_renewal_date": acct.plan_renewal_date,
            "this_hour_searches": 7,
        }
    return Reply(body=body)


API = SimulatedApi(
    name="serpapi",
    mount="/serpapi",
    account=SerpApiSimAccount,
    endpoints=(
        Endpoint(
            "GET",
            "/account.json",
            _account,
            "plan_searches_left",
            ("searches_per_month", "plan_searches_left", "extra_credits", "this_month_usage"),
        ),
    ),
    credential=query_key("api_key"),
    error=_error,
)
