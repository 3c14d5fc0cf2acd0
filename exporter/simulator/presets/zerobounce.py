"""Simulated ZeroBounce, under ``/zerobounce``: ``GET /v2/getcredits`` with the key in
``?api_key=``. A key it does not know gets the documented ``{"Credits": -1}`` in a 200."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import query_key
from ..fields import Converter, to_int


@dataclass(kw_only=True)
class ZeroBounceSimAccount(SimAccount):
    provider: ClassVar[str] = "zerobounce"
    FIELDS: ClassVar[dict[str, Converter]] = {"credits": to_int}

    credits: int = 0


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None:
        return {"Credits": -1}
    return {"error": "Too many requests" if status == 429 else f"HTTP {status}"}


def _credits(acct: ZeroBounceSimAccount, _call: Call) -> Reply:
    return Reply(body={"Credits": acct.credits})


API = SimulatedApi(
    name="zerobounce",
    mount="/zerobounce",
    account=ZeroBounceSimAccount,
    endpoints=(Endpoint("GET", "/v2/getcredits", _credits, "Credits", ("Credits",)),),
    credential=query_key("api_key"),
    error=_error,
    refusal_status=200,
)
