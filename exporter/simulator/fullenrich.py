"""Simulated FullEnrich, under ``/fullenrich/api/v2``: ``GET /account/credits`` with a Bearer
key and FullEnrich's error codes; the balance burns per day."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .account import SimAccount
from .api import JSON, Call, Endpoint, Reply, SimulatedApi
from .auth import bearer
from .clock import DAY
from .fields import Converter, non_negative, to_float


@dataclass(kw_only=True)
class FullEnrichSimAccount(SimAccount):
    provider: ClassVar[str] = "fullenrich"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "balance": to_float,
        "burn_per_day": non_negative,
    }

    balance: float = 0.0
    burn_per_day: float = 0.0

    def advance_state(self, t0: float, t1: float) -> None:
        if self.burn_per_day > 0 and self.balance > 0:
            self.balance = max(0.0, self.balance - self.burn_per_day * (t1 - t0) / DAY)


def _error(status: int, kind: str | None) -> JSON:
    if kind == "missing":
        return {"code": "error.authorization.not_set", "message": "Authorization headers not set"}
    if kind == "not_bearer":
        return {
            "code": "error.authorization.not_bearer",
            "message": "Authorization headers do not have prefix 'bearer'",
        }
    if kind in ("unknown", "revoked") or status == 401:
        return {"code": "error.api.key", "message": "Unknown api key"}
    if status == 429:
        return {"code": "error.rate.limit", "message": "Too many requests. Try again in 1m"}
    if status == 404:
        return {"code": "error.workspace.not_found", "message": "Workspace ID not found"}
    if status == 402:
        return {"code": "error.credits.insufficient", "message": "Not enough credits"}
    if status >= 500:
        return {"code": "error.internal", "message": "Internal server error"}
    return {"code": "error.request", "message": f"HTTP {status}"}


def _credits(acct: FullEnrichSimAccount, _call: Call) -> Reply:
    return Reply(body={"balance": round(acct.balance, 2)})


API = SimulatedApi(
    name="fullenrich",
    mount="/fullenrich/api/v2",
    account=FullEnrichSimAccount,
    endpoints=(Endpoint("GET", "/account/credits", _credits, "balance", ("balance",)),),
    credential=bearer,
    error=_error,
)
