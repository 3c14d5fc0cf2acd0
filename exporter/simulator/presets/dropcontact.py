"""Simulated Dropcontact, under ``/dropcontact``: ``GET /v1/account/credits`` with the key in
``X-Access-Token``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import header_key
from ..fields import Converter, to_int


@dataclass(kw_only=True)
class DropcontactSimAccount(SimAccount):
    provider: ClassVar[str] = "dropcontact"
    FIELDS: ClassVar[dict[str, Converter]] = {"credits": to_int}

    credits: int = 0


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        return {"detail": "Missing or invalid API key"}
    return {"detail": "Too many requests" if status == 429 else f"HTTP {status}"}


def _credits(acct: DropcontactSimAccount, _call: Call) -> Reply:
    return Reply(body={"credits": acct.credits})


API = SimulatedApi(
    name="dropcontact",
    mount="/dropcontact",
    account=DropcontactSimAccount,
    endpoints=(Endpoint("GET", "/v1/account/credits", _credits, "credits", ("credits",)),),
    credential=header_key("X-Access-Token"),
    error=_error,
)
