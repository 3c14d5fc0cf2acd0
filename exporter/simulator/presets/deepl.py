"""Simulated DeepL, ``GET /v2/usage`` with a ``DeepL-Auth-Key`` key on two hosts like the real
API: the Pro host under ``/deepl`` (:data:`API`) and the Free host under ``/deepl-free``
(:data:`FREE_API`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import header_key
from ..fields import Converter, opt_str, to_int


@dataclass(kw_only=True)
class DeepLSimAccount(SimAccount):
    """Keys ending in ``:fx`` are DeepL API Free keys: only the free host (``/deepl-free``)
    accepts them, and only the Pro host (``/deepl``) accepts the others, like the real API."""

    provider: ClassVar[str] = "deepl"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "character_count": to_int,
        "character_limit": to_int,
        "start_time": opt_str,
        "end_time": opt_str,
    }

    character_count: int = 0
    character_limit: int = 500_000
    start_time: str | None = None
    """Pro only: the billing period (sent when set)."""
    end_time: str | None = None


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status in (401, 403):
        return {"message": "Authorization failure, check auth_key"}
    messages = {429: "Too many requests", 456: "Quota exceeded", 503: "Service unavailable"}
    return {"message": messages.get(status, "Internal server error")}


def _usage(free: bool) -> Callable[[DeepLSimAccount, Call], Reply]:
    def handler(acct: DeepLSimAccount, _call: Call) -> Reply:
        if acct.api_key.endswith(":fx") != free:
            host = "https://api-free.deepl.com" if not free else "https://api.deepl.com"
            return Reply(403, {"message": f"Wrong endpoint. Use {host}"})
        body: dict[str, Any] = {
            "character_count": acct.character_count,
            "character_limit": acct.character_limit,
        }
        if not free:
            if acct.start_time is not None:
                body["start_time"] = acct.start_time
            if acct.end_time is not None:
                body["end_time"] = acct.end_time
            body["api_key_character_count"] = acct.character_count
            body["api_key_character_limit"] = 1_000_000_000_000
        return Reply(body=body)

    return handler


def _api(name: str, mount: str, free: bool) -> SimulatedApi:
    return SimulatedApi(
        name=name,
        mount=mount,
        account=DeepLSimAccount,
        endpoints=(
            Endpoint(
                "GET",
                "/v2/usage",
                _usage(free),
                "character_count",
                ("character_count", "character_limit"),
            ),
        ),
        credential=header_key("Authorization", "DeepL-Auth-Key"),
        error=_error,
    )


API = _api("deepl", "/deepl", free=False)
FREE_API = _api("deepl-free", "/deepl-free", free=True)
