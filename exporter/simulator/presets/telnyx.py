"""Simulated Telnyx, under ``/telnyx/v2``: ``GET /balance`` with a Bearer key; amounts are
decimal strings. The balance burns per day, down to minus the credit limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import bearer
from ..clock import DAY
from ..fields import Converter, non_negative, to_float, to_str


@dataclass(kw_only=True)
class TelnyxSimAccount(SimAccount):
    provider: ClassVar[str] = "telnyx"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "balance": to_float,
        "credit_limit": to_float,
        "pending": to_float,
        "currency": to_str,
        "burn_per_day": non_negative,
    }

    balance: float = 0.0
    """May be negative: use on credit."""
    credit_limit: float = 0.0
    pending: float = 0.0
    currency: str = "USD"
    burn_per_day: float = 0.0

    def advance_state(self, t0: float, t1: float) -> None:
        if self.burn_per_day > 0 and self.balance > -self.credit_limit:
            spent = self.burn_per_day * (t1 - t0) / DAY
            self.balance = max(-self.credit_limit, self.balance - spent)


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        code, title = "10009", "Authentication failed"
        detail = "The required authentication headers were either invalid or not included."
    elif status == 429:
        code, title = "10011", "Too many requests"
        detail = "You have exceeded the maximum number of allowed requests."
    else:
        code, title, detail = "10007", "Unexpected error", f"HTTP {status}"
    return {"errors": [{"code": code, "title": title, "detail": detail}]}


def _balance(acct: TelnyxSimAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "data": {
                "record_type": "balance",
                "pending": f"{acct.pending:.2f}",
                "balance": f"{acct.balance:.2f}",
                "credit_limit": f"{acct.credit_limit:.2f}",
                "available_credit": f"{acct.balance + acct.credit_limit:.2f}",
                "currency": acct.currency,
            }
        }
    )


API = SimulatedApi(
    name="telnyx",
    mount="/telnyx/v2",
    account=TelnyxSimAccount,
    endpoints=(Endpoint("GET", "/balance", _balance, "balance", ("balance", "credit_limit")),),
    credential=bearer,
    error=_error,
)
