"""An upstream that echoes the key INSIDE a value (``{"balance": "<key> is not allowed"}``): the
parse error quotes the value cut to a few dozen characters, and no run of 8 or more characters of
the key may survive, in the daemon's log, on its pages, or on ``once``'s stderr.

Keys are longer than every cut, and each value is tried with the key at its start and after some
text (so that the cut falls inside the key), through every reader that quotes a value: the
http_json provider's numbers, timestamps and pool names, and the built-in providers' timestamps.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from support import ExporterProcess, http_get, run_exporter, wait_for
from support.leaks import find_secrets
from support.servers import AppThread

Body = Callable[[str], Any]


def new_key() -> str:
    """Letters only and long (no run of it is a word, a number or a timestamp in a log)."""
    return "".join(random.choices(string.ascii_letters, k=120))


#: How the echoed key sits in the value: at its start, or so that a 40-character cut falls in it.
PLACES = {"start": lambda key: f"{key} is not allowed", "inside": lambda key: f"key: {key}!"}

#: (provider, path answered, body around the echoing value).
SHAPES: dict[str, tuple[str, str, Body]] = {
    "http_json_number": ("http_json", "/hj", lambda v: {"balance": v}),
    "http_json_timestamp": ("http_json", "/hj", lambda v: {"balance": 5, "expires": v}),
    "http_json_pool_name": ("http_json", "/hj", lambda v: {"items": [{"name": v, "left": 1}]}),
    "theirstack_timestamp": (
        "theirstack",
        "/v0/billing/credit-balance",
        lambda v: {
            "api_credits": 1,
            "ui_credits": 2,
            "used_api_credits": 0,
            "used_ui_credits": 0,
            "earliest_expiration": v,
        },
    ),
    "windsurf_timestamp": (
        "windsurf",
        "/GetTeamCreditBalance",
        lambda v: {
            "promptCreditsPerSeat": 500,
            "numSeats": 2,
            "addOnCreditsAvailable": 10,
            "addOnCreditsUsed": 1,
            "billingCycleStart": v,
        },
    ),
}
HTTP_JSON = {
    "provider_name": "echo",
    "request": {"url": "/hj"},
    "auth": {"type": "bearer"},
    "pools": {
        "balance": {"remaining": "balance"},
        "items": {"for_each": "items", "name": "name", "remaining": "left"},
    },
    "expiry": "expires",
}


class Case:
    def __init__(self, shape: str, place: str) -> None:
        self.name = f"{shape}-{place}"
        self.provider, self.path, body = SHAPES[shape]
        self.key = new_key()
        self.body = body(PLACES[place](self.key))
        # Every path the http_json account reads is there: the echoing value is what fails.
        self.body.setdefault("balance", 5)
        self.body.setdefault("items", [])

    def account(self, base_url: str) -> dict[str, Any]:
        account: dict[str, Any] = {
            "name": self.name,
            "provider": self.provider,
            "api_key": self.key,
            "base_url": f"{base_url}/{self.name}",
        }
        if self.provider == "http_json":
            account.update(HTTP_JSON)
        if self.provider == "theirstack":
            account["consumption"] = {"enabled": False}
        return account


CASES = [Case(shape, place) for shape in SHAPES for place in PLACES]


class Echo(AppThread):
    """Answers each case's path under /<case name>/ with its body."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{case}/{tail:.*}", self.answer)
        self.bodies = {c.name: c.body for c in CASES}
        super().__init__(app)

    async def answer(self, request: web.Request) -> web.Response:
        return web.json_response(self.bodies[request.match_info["case"]])


def leaks(text: str) -> list[str]:
    """Every case whose key has a run of 8 characters in ``text``, in any case."""
    return [case.name for case in CASES if find_secrets(text, [case.key])]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    echo = Echo()
    echo.start()
    path = tmp_path_factory.mktemp("echo") / "config.yaml"
    accounts = [c.account(echo.url) for c in CASES]
    path.write_text(
        yaml.safe_dump({"defaults": {"interval": "1h", "timeout": "5s"}, "accounts": accounts})
    )
    yield path
    echo.stop()


def test_daemon_log_and_pages_hold_no_fragment(config: Path, tmp_path: Path) -> None:
    exp = ExporterProcess(config.read_text(), tmp_path)
    try:
        exp.wait_ready()

        def every_account_down() -> list[str] | None:
            lines = [x for x in exp.logs().splitlines() if "account down" in x]
            return lines if len(lines) == len(CASES) else None

        down = wait_for(every_account_down)
        pages = {path: http_get(f"{exp.url}{path}")[1].decode() for path in ("/", "/api/status")}
        pages["/metrics"] = exp.metrics()
    finally:
        exp.stop()
    logs = exp.logs()
    # Each value was quoted (what the redaction took out shows), and no key survived.
    for case in CASES:
        line = next(x for x in down if f"account={case.name} " in x)
        assert "[REDACTED]" in line, line
    assert leaks(logs) == [], logs
    for path, text in pages.items():
        assert leaks(text) == [], path
    status = json.loads(pages["/api/status"])
    assert {a["account"] for a in status["accounts"]} == {c.name for c in CASES}


def test_once_stderr_holds_no_fragment(config: Path) -> None:
    result = run_exporter("once", f"--config.file={config}")
    assert result.returncode == 1, result.stderr
    failed = [x for x in result.stderr.splitlines() if "poll failed" in x]
    assert len(failed) == len(CASES), result.stderr
    assert all("[REDACTED]" in line for line in failed), result.stderr
    assert leaks(result.stderr + result.stdout) == [], result.stderr
