"""Simulated BoldSign, under ``/boldsign``: ``GET /v1/plan/apiCreditsCount`` with the key in
``X-API-KEY``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import header_key
from ..fields import Converter, to_int


@dataclass(kw_only=True)
class BoldSignSimAccount(SimAccount):
    provider: ClassVar[str] = "boldsign"
    FIELDS: ClassVar[dict[str, Converter]] = {"balance_credits": to_int}

    balance_credits: int = 0


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        return {"error": "Unauthorized"}
    return {"error": "Too Many Requests" if status == 429 else f"HTTP {status}"}


def _credits(acct: BoldSignSimAccount, _call: Call) -> Reply:
    return Reply(body={"BalanceCredits": acct.balance_credits})


API = SimulatedApi(
    name="boldsign",
    mount="/boldsign",
    account=BoldSignSimAccount,
    endpoints=(
        Endpoint(
            "GET", "/v1/plan/apiCreditsCount", _credits, "BalanceCredits", ("BalanceCredits",)
        ),
    ),
    credential=header_key("X-API-KEY"),
    error=_error,
)
