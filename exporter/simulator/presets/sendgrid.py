"""Simulated Twilio SendGrid, under ``/sendgrid``: ``GET /v3/user/credits`` with a Bearer key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import bearer
from ..clock import add_months
from ..fields import Converter, to_int, to_str


@dataclass(kw_only=True)
class SendGridSimAccount(SimAccount):
    """``used`` beyond ``total`` is overage: remain 0, overage the rest."""

    provider: ClassVar[str] = "sendgrid"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "total": to_int,
        "used": to_int,
        "last_reset": to_str,
        "next_reset": to_str,
        "reset_frequency": to_str,
    }

    total: int = 0
    used: int = 0
    last_reset: str = ""
    next_reset: str = ""
    reset_frequency: str = "monthly"

    def init_defaults(self, now: float) -> None:
        first = datetime.fromtimestamp(now, UTC).replace(day=1)
        self.last_reset = first.date().isoformat()
        self.next_reset = add_months(first, 1).date().isoformat()


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        message = "authorization required"
    elif status == 429:
        message = "too many requests"
    else:
        message = f"HTTP {status}"
    return {"errors": [{"field": None, "message": message}]}


def _credits(acct: SendGridSimAccount, _call: Call) -> Reply:
    return Reply(
        body={
            "remain": max(0, acct.total - acct.used),
            "total": acct.total,
            "overage": max(0, acct.used - acct.total),
            "used": acct.used,
            "last_reset": acct.last_reset,
            "next_reset": acct.next_reset,
            "reset_frequency": acct.reset_frequency,
        }
    )


API = SimulatedApi(
    name="sendgrid",
    mount="/sendgrid",
    account=SendGridSimAccount,
    endpoints=(
        Endpoint("GET", "/v3/user/credits", _credits, "remain", ("remain", "total", "used")),
    ),
    credential=bearer,
    error=_error,
)
