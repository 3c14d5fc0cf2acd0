"""Simulated Moonshot AI (Kimi), under ``/moonshot``: ``GET /v1/users/me/balance`` with a Bearer
key. The currency depends on the real API's host: the simulator serves plain numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import bearer
from ..fields import Converter, non_negative, to_float


@dataclass(kw_only=True)
class MoonshotSimAccount(SimAccount):
    """``cash_balance`` may be negative (money owed); the available balance is cash plus
    vouchers, or the vouchers alone while cash is negative, as documented."""

    provider: ClassVar[str] = "moonshot"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "voucher_balance": non_negative,
        "cash_balance": to_float,
    }

    voucher_balance: float = 0.0
    cash_balance: float = 0.0


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        message, name = "Invalid Authentication", "invalid_authentication_error"
    elif status == 403:
        message, name = "Your account balance is insufficient", "exceeded_current_quota_error"
    elif status == 429:
        message, name = "Your account reached max request", "rate_limit_reached_error"
    else:
        message, name = "Server error", "server_error"
    return {"error": {"message": message, "type": name}}


def _balance(acct: MoonshotSimAccount, _call: Call) -> Reply:
    cash, voucher = acct.cash_balance, acct.voucher_balance
    available = voucher if cash < 0 else cash + voucher
    return Reply(
        body={
            "code": 0,
            "data": {
                "available_balance": round(available, 5),
                "voucher_balance": round(voucher, 5),
                "cash_balance": round(cash, 5),
            },
            "scode": "0x0",
            "status": True,
        }
    )


API = SimulatedApi(
    name="moonshot",
    mount="/moonshot",
    account=MoonshotSimAccount,
    endpoints=(
        Endpoint(
            "GET",
            "/v1/users/me/balance",
            _balance,
            "available_balance",
            ("available_balance", "voucher_balance", "cash_balance"),
        ),
    ),
    credential=bearer,
    error=_error,
)
