"""Simulated OpenRouter, under ``/openrouter/api/v1``: ``GET /credits`` with a Bearer key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import bearer
from ..fields import Converter, to_float


@dataclass(kw_only=True)
class OpenRouterSimAccount(SimAccount):
    provider: ClassVar[str] = "openrouter"
    FIELDS: ClassVar[dict[str, Converter]] = {"total_credits": to_float, "total_usage": to_float}

    total_credits: float = 0.0
    total_usage: float = 0.0


def _error(status: int, kind: str | None) -> JSON:
    messages = {401: "No auth credentials found", 402: "Insufficient credits"}
    if kind in ("unknown", "revoked"):
        message = "User not found."
    else:
        message = messages.get(status, "Rate limit exceeded" if status == 429 else "Error")
    return {"error": {"code": status, "message": message}}


def _credits(acct: OpenRouterSimAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "data": {
                "total_credits": round(acct.total_credits, 6),
                "total_usage": round(acct.total_usage, 6),
            }
        }
    )


API = SimulatedApi(
    name="openrouter",
    mount="/openrouter/api/v1",
    account=OpenRouterSimAccount,
    endpoints=(
        Endpoint("GET", "/credits", _credits, "total_credits", ("total_credits", "total_usage")),
    ),
    credential=bearer,
    error=_error,
)
