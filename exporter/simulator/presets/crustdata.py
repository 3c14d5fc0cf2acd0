"""Simulated Crustdata, under ``/crustdata``: ``GET /user/credits`` with a Bearer key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import bearer
from ..fields import Converter, to_float


@dataclass(kw_only=True)
class CrustdataSimAccount(SimAccount):
    provider: ClassVar[str] = "crustdata"
    FIELDS: ClassVar[dict[str, Converter]] = {"credits": to_float}

    credits: float = 0.0
    """May be fractional for some plans."""


def _error(status: int, kind: str | None) -> JSON:
    if kind == "missing":
        return {"message": "Missing API key in request"}
    if kind is not None or status == 401:
        return {"message": "Invalid API key in request"}
    if status == 402:
        return {"error": {"type": "insufficient_credits", "message": "Insufficient credits"}}
    return {"message": "Rate limit exceeded" if status == 429 else f"HTTP {status}"}


def _credits(acct: CrustdataSimAccount, _call: Call) -> Reply:
    return Reply(body={"credits": acct.credits})


API = SimulatedApi(
    name="crustdata",
    mount="/crustdata",
    account=CrustdataSimAccount,
    endpoints=(Endpoint("GET", "/user/credits", _credits, "credits", ("credits",)),),
    credential=bearer,
    error=_error,
)
