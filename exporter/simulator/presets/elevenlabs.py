"""Simulated ElevenLabs, under ``/elevenlabs``: ``GET /v1/user/subscription`` with the key in
``xi-api-key``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import header_key
from ..fields import Converter, opt_int, to_int, to_str


@dataclass(kw_only=True)
class ElevenLabsSimAccount(SimAccount):
    provider: ClassVar[str] = "elevenlabs"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "tier": to_str,
        "character_count": to_int,
        "character_limit": to_int,
        "next_character_count_reset_unix": opt_int,
    }

    tier: str = "creator"
    character_count: int = 0
    character_limit: int = 100_000
    next_character_count_reset_unix: int | None = None


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        return {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
    if status == 429:
        return {"detail": {"status": "too_many_concurrent_requests", "message": "Too many"}}
    return {"detail": {"status": "error", "message": f"HTTP {status}"}}


def _subscription(acct: ElevenLabsSimAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "tier": acct.tier,
            "character_count": acct.character_count,
            "character_limit": acct.character_limit,
            "can_extend_character_limit": acct.tier != "free",
            "allowed_to_extend_character_limit": acct.tier != "free",
            "next_character_count_reset_unix": acct.next_character_count_reset_unix,
            "voice_limit": 30,
            "professional_voice_limit": 1,
            "can_use_instant_voice_cloning": True,
            "currency": "usd",
            "status": "active",
            "billing_period": "monthly_period",
            "character_refresh_period": "monthly_period",
        }
    )


API = SimulatedApi(
    name="elevenlabs",
    mount="/elevenlabs",
    account=ElevenLabsSimAccount,
    endpoints=(
        Endpoint(
            "GET",
            "/v1/user/subscription",
            _subscription,
            "character_count",
            ("character_count", "character_limit", "next_character_count_reset_unix"),
        ),
    ),
    credential=header_key("xi-api-key"),
    error=_error,
)
