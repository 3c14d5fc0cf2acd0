"""Simulated Vonage, under ``/vonage``: ``GET /account/get-balance`` with Basic authentication
(the Vonage API key as user, the API secret as password)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import basic_password, basic_username
from ..fields import Converter, to_bool, to_float, to_str


@dataclass(kw_only=True)
class VonageSimAccount(SimAccount):
    """The api_key is the API secret; requests must name ``vonage_api_key`` as the Basic user."""

    provider: ClassVar[str] = "vonage"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "vonage_api_key": to_str,
        "value": to_float,
        "auto_reload": to_bool,
    }

    vonage_api_key: str = ""
    value: float = 0.0
    """The balance, in euros."""
    auto_reload: bool = False

    def init_defaults(self, now: float) -> None:
        self.vonage_api_key = hashlib.sha256(self.api_key.encode()).hexdigest()[:8]


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        name, title, detail = (
            "unauthorized",
            "Unauthorized",
            "You did not provide correct credentials.",
        )
    elif status == 429:
        name, title, detail = "throttled", "Too Many Requests", "Please wait, then retry."
    else:
        name, title, detail = "internal", "Internal Error", f"HTTP {status}"
    return {
        "type": f"https://developer.vonage.com/api-errors#{name}",
        "title": title,
        "detail": detail,
        "instance": "bf0ca0bf927b3b52e3cb03217e1a1ddf",
    }


def _balance(acct: VonageSimAccount, call: Call) -> Reply:
    if basic_username(call.request) != acct.vonage_api_key:
        return Reply(401, _error(401, "unknown"))
    return Reply(body={"value": round(acct.value, 2), "autoReload": acct.auto_reload})


API = SimulatedApi(
    name="vonage",
    mount="/vonage",
    account=VonageSimAccount,
    endpoints=(Endpoint("GET", "/account/get-balance", _balance, "value", ("value",)),),
    credential=basic_password,
    error=_error,
)
