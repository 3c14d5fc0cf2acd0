"""Simulated Plivo, under ``/plivo``: ``GET /v1/Account/{auth_id}/`` with Basic authentication
(the Auth ID as user, the Auth Token as password); ``cash_credits`` is a decimal string."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import basic_password, basic_username
from ..fields import Converter, choice, to_float, to_str


@dataclass(kw_only=True)
class PlivoSimAccount(SimAccount):
    """The api_key is the Auth Token; requests must name ``auth_id`` in the path and as the
    Basic user."""

    provider: ClassVar[str] = "plivo"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "auth_id": to_str,
        "cash_credits": to_float,
        "billing_mode": lambda v: choice(v, ("prepaid", "postpaid")),
    }

    auth_id: str = ""
    cash_credits: float = 0.0
    billing_mode: str = "prepaid"

    def init_defaults(self, now: float) -> None:
        self.auth_id = "MA" + hashlib.sha256(self.api_key.encode()).hexdigest()[:18].upper()


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        message = "authentication failed"
    elif status == 404:
        message = "not found"
    else:
        message = f"HTTP {status}"
    return {"api_id": "150892a0-922a-11e7-b6f4-061564b78b75", "error": message}


def _account(acct: PlivoSimAccount, call: Call) -> Reply:
    if basic_username(call.request) != acct.auth_id:
        return Reply(401, _error(401, "unknown"))
    if call.request.match_info.get("auth_id") != acct.auth_id:
        return Reply(404, _error(404, None))
    return Reply(
        body={
            "account_type": "standard",
            "api_id": "150892a0-922a-11e7-b6f4-061564b78b75",
            "auth_id": acct.auth_id,
            "auto_recharge": False,
            "billing_mode": acct.billing_mode,
            "cash_credits": f"{acct.cash_credits:.5f}",
            "name": "Ada Lovelace",
            "resource_uri": f"/v1/Account/{acct.auth_id}/",
            "timezone": "Europe/London",
        }
    )


API = SimulatedApi(
    name="plivo",
    mount="/plivo",
    account=PlivoSimAccount,
    endpoints=(
        Endpoint("GET", "/v1/Account/{auth_id}/", _account, "cash_credits", ("cash_credits",)),
    ),
    credential=basic_password,
    error=_error,
)
