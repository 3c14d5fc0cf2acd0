"""Simulated Anti-Captcha, under ``/anticaptcha``: ``POST /getBalance`` with the key in the JSON
body's ``clientKey``. Errors come in a 200 with ``errorId`` above 0, as documented."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..account import SimAccount
from ..api import JSON, Call, Endpoint, Reply, SimulatedApi
from ..auth import body_key
from ..fields import Converter, choice, opt_int, to_float

#: The documented errors getBalance may answer: code -> (errorId, errorDescription).
ERRORS: Mapping[str, tuple[int, str]] = {
    "ERROR_KEY_DOES_NOT_EXIST": (1, "Account authorization key not found in the system"),
    "ERROR_ZERO_BALANCE": (10, "Account has zero or negative balance"),
    "ERROR_IP_NOT_ALLOWED": (11, "Request with current account key is not allowed from your IP"),
    "ERROR_IP_BLOCKED": (21, "Your IP is blocked due to API inproper use"),
    "ERROR_NO_SUCH_METHOD": (14, "Request to API made with method which does not exist"),
}


def _error_code(value: Any) -> str | None:
    return None if value is None else choice(value, tuple(ERRORS))


@dataclass(kw_only=True)
class AntiCaptchaSimAccount(SimAccount):
    """``error``: answer that documented error (a code of :data:`ERRORS`) instead of the
    balance; ``captcha_credits`` None leaves ``captchaCredits`` out."""

    provider: ClassVar[str] = "anticaptcha"
    FIELDS: ClassVar[dict[str, Converter]] = {
        "balance": to_float,
        "captcha_credits": opt_int,
        "error": _error_code,
    }

    balance: float = 0.0
    """In US dollars."""
    captcha_credits: int | None = None
    error: str | None = None


def _answer_error(code: str) -> JSON:
    error_id, description = ERRORS[code]
    return {"errorId": error_id, "errorCode": code, "errorDescription": description}


def _error(status: int, kind: str | None) -> JSON:
    return _answer_error("ERROR_KEY_DOES_NOT_EXIST" if kind is not None else "ERROR_NO_SUCH_METHOD")


def _balance(acct: AntiCaptchaSimAccount, _call: Call) -> Reply:
    if acct.error is not None:
        return Reply(body=_answer_error(acct.error))
    body: dict[str, JSON] = {"errorId": 0, "balance": round(acct.balance, 4)}
    if acct.captcha_credits is not None:
        body["captchaCredits"] = acct.captcha_credits
    return Reply(body=body)


API = SimulatedApi(
    name="anticaptcha",
    mount="/anticaptcha",
    account=AntiCaptchaSimAccount,
    endpoints=(Endpoint("POST", "/getBalance", _balance, "balance", ("balance",)),),
    credential=body_key("clientKey"),
    error=_error,
    json_body=True,
    refusal_status=200,
)
