"""Simulated DeepSeek, under ``/deepseek``: ``GET /user/balance`` with a Bearer key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import bearer
from ..fields import Converter, to_float, to_str


def _balances(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of currency -> amount, got {type(value).__name__}")
    return {to_str(k): to_float(v) for k, v in value.items()}


@dataclass(kw_only=True)
class DeepSeekSimAccount(SimAccount):
    provider: ClassVar[str] = "deepseek"
    FIELDS: ClassVar[dict[str, Converter]] = {"balances": _balances, "granted": _balances}

    balances: dict[str, float] = field(default_factory=lambda: {"CNY": 0.0})
    """Currency -> total balance."""
    granted: dict[str, float] = field(default_factory=dict)
    """Currency -> the granted (free) part of the total."""


def _error(status: int, kind: str | None) -> JSON:
    if kind is not None or status == 401:
        message, kind_name = "Authentication Fails (no such user)", "authentication_error"
    elif status == 402:
        message, kind_name = "Insufficient Balance", "unknown_error"
    elif status == 429:
        message, kind_name = "Rate limit reached", "rate_limit_error"
    else:
        message, kind_name = "Server error", "server_error"
    return {
        "error": {"message": message, "type": kind_name, "param": None, "code": "invalid_request"}
    }


def _balance(acct: DeepSeekSimAccount, _call: Call) -> Reply:
    infos = []
    for currency, total in acct.balances.items():
        granted = acct.granted.get(currency, 0.0)
        infos.append(
            {
                "currency": currency,
                "total_balance": f"{total:.2f}",
                "granted_balance": f"{granted:.2f}",
                "topped_up_balance": f"{total - granted:.2f}",
            }
        )
    return Reply(
        body={"is_available": any(v > 0 for v in acct.balances.values()), "balance_infos": infos}
    )


API = SimulatedApi(
    name="deepseek",
    mount="/deepseek",
    account=DeepSeekSimAccount,
    endpoints=(
        Endpoint(
            "GET",
            "/user/balance",
            _balance,
            "balance_infos",
            ("total_balance", "granted_balance", "topped_up_balance"),
        ),
    ),
    credential=bearer,
    error=_error,
)
