"""Simulated Twilio, under ``/twilio``: ``GET /2010-04-01/Accounts/{sid}/Balance.json`` with
Basic authentication (the Account SID as user, the auth token as password)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import basic_password, basic_username
from ..fields import Converter, to_bool, to_float, to_str


@dataclass(kw_only=True)
class TwilioSimAccount(SimAccount):
    """The api_key is the auth token; requests must name ``account_sid`` in the path and as
    the Basic username."""

    provider: ClassVar[str] = "twilio"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "account_sid": to_str,
        "balance": to_float,
        "currency": to_str,
        "subaccount": to_bool,
    }

    account_sid: str = ""
    balance: float = 0.0
    """May be negative, as on a real account that used more than its balance."""
    currency: str = "USD"
    subaccount: bool = False
    """A subaccount: Twilio answers null balance and currency (the parent holds the balance)."""

    def init_defaults(self, now: float) -> None:
        self.account_sid = "AC" + hashlib.sha256(self.api_key.encode()).hexdigest()[:32]


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        code, message = 20003, "Authenticate"
    elif status == 404:
        code, message = 20404, "The requested resource was not found"
    elif status == 429:
        code, message = 20429, "Too Many Requests"
    else:
        code, message = 20500, "Internal Server Error"
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _balance(acct: TwilioSimAccount, call: Call) -> Reply:
    if basic_username(call.request) != acct.account_sid:
        return Reply(401, _error(401, "unknown"))
    if call.request.match_info.get("sid") != acct.account_sid:
        return Reply(404, _error(404, None))
    return Reply(
        body={
            "account_sid": acct.account_sid,
            "balance": None if acct.subaccount else f"{acct.balance:.2f}",
            "currency": None if acct.subaccount else acct.currency,
        }
    )


API = SimulatedApi(
    name="twilio",
    mount="/twilio",
    account=TwilioSimAccount,
    endpoints=(
        Endpoint(
            "GET",
            "/2010-04-01/Accounts/{sid}/Balance.json",
            _balance,
            "balance",
            ("balance",),
        ),
    ),
    credential=basic_password,
    error=_error,
)
