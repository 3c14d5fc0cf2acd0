"""Every way a key travels (a query string, a header of its own, after a scheme such as
``Bearer``, inside HTTP Basic's base64, a JSON body) puts it in what an upstream may echo. Through
the real daemon, a hostile upstream echoes the request (its URL, its headers, its body, or the
key itself, lower-cased or as a pool's name) in every place an answer can hold it: an error's
JSON body, a value the parser quotes, a pool name, a redirect's target, a plain-text error page,
a status line or a header that is not HTTP; a failing one refuses the connection. Neither the
key nor any form it travelled in, nor any run of 8 of their characters in any case, may reach a
log line (debug level), /metrics, the status page or /api/status. The daemon runs with aiohttp's
C HTTP parser and with its pure-Python one, whose complaints quote the bytes they could not read.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from support import ExporterProcess, free_port, http_get, wait_for
from support.leaks import find_secrets, wire_forms
from support.servers import AppThread

Answer = Callable[[web.Request, str], web.StreamResponse]
#: The request's body, as the hostile upstream read it.
BODY = web.RequestKey("body", str)


def new_key(specials: str = "/+=%&? ") -> str:
    """40 characters, with one a URL (or JSON) writes otherwise every few: its forms all
    differ, and no run of 8 of the key's characters survives in another form."""
    rng = random.Random()
    parts = [
        "".join(rng.choices(string.ascii_letters, k=4)) + rng.choice(specials) for _ in range(8)
    ]
    return "".join(parts)


def json_key() -> str:
    """A key a JSON string writes otherwise every few characters (``\\"`` and ``\\\\``)."""
    return new_key('"\\')


def name_key() -> str:
    """A key that makes a valid pool name once lower-cased (letters, digits, ``-``)."""
    rng = random.Random()
    return "sk-" + "".join(rng.choices(string.ascii_letters + string.digits, k=40))


def echo_url(request: web.Request) -> str:
    return request.path_qs  # the request's path and query string as sent: the key encoded


def echo_auth(request: web.Request) -> str:
    return request.headers.get("Authorization", "")


def refused(status: int, **body: Any) -> web.Response:
    return web.json_response(body, status=status)


@dataclass(frozen=True)
class Case:
    """A preset, what the hostile upstream answers its request with (given the key), and the
    account's params and key."""

    preset: str
    answer: Answer
    params: Mapping[str, str] = field(default_factory=dict)
    key: Callable[[], str] = new_key

    @property
    def basic_user(self) -> str | None:
        return next(iter(self.params.values()), None)


#: case -> how it goes. The request it echoes holds the key as the exporter sent it.
HTTP_CASES: dict[str, Case] = {
    # The key in the query string.
    "error_body_echoes_url": Case(
        "serpapi", lambda r, key: refused(400, error=f"bad request {echo_url(r)}")
    ),
    "error_body_echoes_full_url": Case(
        "serpapi", lambda r, key: refused(404, error=f"no route for {r.url}")
    ),
    "error_body_echoes_key": Case(
        "zerobounce", lambda r, key: refused(401, error=f"api_key {key} is not valid")
    ),
    "error_body_lowercases_key": Case(
        "serpapi", lambda r, key: refused(401, error=f"invalid api key {key.lower()}")
    ),
    "value_echoes_url": Case(
        "serpapi",
        lambda r, key: web.json_response(
            {
                "searches_per_month": f"see {echo_url(r)}",
                "this_month_usage": 1,
                "plan_searches_left": 1,
                "extra_credits": 0,
            }
        ),
    ),
    "timestamp_echoes_url": Case(
        "serpapi",
        lambda r, key: web.json_response(
            {
                "searches_per_month": 5,
                "this_month_usage": 1,
                "plan_searches_left": 4,
                "extra_credits": 0,
                "plan_renewal_date": echo_url(r),
            }
        ),
    ),
    "refusal_in_a_200_echoes_url": Case(
        "zerobounce", lambda r, key: web.json_response({"Credits": -1, "request": echo_url(r)})
    ),
    "redirect_to_the_url": Case(
        "serpapi",
        lambda r, key: web.Response(
            status=302, headers={"Location": f"https://elsewhere.example{echo_url(r)}"}
        ),
    ),
    "text_error_page_echoes_url": Case(
        "zerobounce", lambda r, key: web.Response(status=500, text=f"Internal error at {r.url}")
    ),
    # HTTP Basic: the key inside the base64 of user:key.
    "basic_header_echoed": Case(
        "twilio",
        lambda r, key: refused(401, code=20003, message=f"refused credentials {echo_auth(r)}"),
        {"account_sid": "AC0123456789abcdef0123456789abcdef"},
    ),
    "basic_token_in_a_value": Case(
        "vonage",
        lambda r, key: web.json_response(
            {"value": echo_auth(r).removeprefix("Basic "), "autoReload": False}
        ),
        {"vonage_api_key": "a1b2c3d4"},
    ),
    "basic_header_in_a_server_error": Case(
        "plivo",
        lambda r, key: refused(500, error=f"upstream saw headers {dict(r.headers)}"),
        {"auth_id": "MAXXXXXXXXXXXXXXXXXX"},
    ),
    # A header: Bearer, another scheme, a header of its own.
    "bearer_header_echoed": Case(
        "telnyx",
        lambda r, key: refused(
            401,
            errors=[{"code": "10009", "title": "Authentication failed", "detail": echo_auth(r)}],
        ),
    ),
    "scheme_header_echoed": Case(
        "deepl", lambda r, key: refused(403, message=f"wrong key: {echo_auth(r)}")
    ),
    "own_header_echoed": Case(
        "lusha",
        lambda r, key: refused(401, message=f"api_key header {r.headers.get('api_key')} unknown"),
    ),
    # The key in a JSON body, as a JSON string writes it.
    "body_echoed_in_a_refusal": Case(
        "anticaptcha",
        lambda r, key: web.json_response(
            {"errorId": 1, "errorCode": f"ERROR_KEY_DOES_NOT_EXIST {r[BODY]}"}
        ),
        key=json_key,
    ),
    "body_echoed_beside_a_200": Case(
        "windsurf",
        lambda r, key: web.json_response({"error": f"cannot read request {r[BODY]}"}),
        key=json_key,
    ),
    # The key (lower-cased) as a pool's name: it would become a label.
    "pool_name_echoes_key": Case(
        "deepseek",
        lambda r, key: web.json_response(
            {
                "is_available": True,
                "balance_infos": [{"currency": key, "total_balance": "10.00"}],
            }
        ),
        key=name_key,
    ),
}
#: case -> the raw bytes a server that does not speak HTTP answers, given the request line.
RAW_CASES: dict[str, Callable[[bytes], bytes]] = {
    "status_line_echoes_request": lambda line: b"HTTP/1.1 4OO " + line + b"\r\n\r\n",
    "request_line_as_answer": lambda line: line + b"\r\n\r\n",
    "header_echoes_request": lambda line: b"HTTP/1.1 200 OK\r\nX " + line + b"\r\n\r\n",
    "chunk_size_echoes_request": (
        lambda line: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\n"
    ),
}
CASES = [*HTTP_CASES, *RAW_CASES, "connection_refused"]


def no_reply(line: bytes) -> bytes:
    return b""


class Hostile(AppThread):
    """Answers /<case>/... as HTTP_CASES says, with that case's key (the request's body read
    into ``request[BODY]``)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        app = web.Application()
        app.router.add_route("*", "/{case}/{tail:.*}", self.answer)
        super().__init__(app)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        case = request.match_info["case"]
        request[BODY] = await request.text()
        return HTTP_CASES[case].answer(request, self.keys[case])


class RawEcho:
    """A TCP server that reads a request and answers bytes that are not HTTP, quoting the
    request line (``GET /case/...?api_key=... HTTP/1.1``) as RAW_CASES says."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).rstrip(b"\r\n")
        await reader.read(4096)
        case = line.split(b" ")[1].split(b"/")[1].decode() if line.count(b" ") >= 2 else ""
        writer.write(RAW_CASES.get(case, no_reply)(line))
        await writer.drain()
        writer.close()

    def start(self) -> str:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        )
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """(case -> key, case -> base_url) with the hostile servers running."""
    keys = {case: HTTP_CASES[case].key() if case in HTTP_CASES else new_key() for case in CASES}
    hostile, raw = Hostile(keys), RawEcho()
    http_url, raw_url = hostile.start(), raw.start()
    bases = {case: f"{http_url}/{case}" for case in HTTP_CASES}
    bases |= {case: f"{raw_url}/{case}" for case in RAW_CASES}
    bases["connection_refused"] = f"http://127.0.0.1:{free_port()}/refused"
    yield keys, bases
    hostile.stop()
    raw.stop()


def config(keys: dict[str, str], bases: dict[str, str]) -> dict[str, Any]:
    accounts = []
    for case in CASES:
        spec = HTTP_CASES.get(case)
        account: dict[str, Any] = {
            "name": case,
            "provider": spec.preset if spec else "serpapi",
            "api_key": keys[case],
            "base_url": bases[case],
        }
        if spec and spec.params:
            account["params"] = dict(spec.params)
        accounts.append(account)
    # A second poll of each (backoff after the first failure) runs within the test's wait.
    return {"defaults": {"interval": "20s", "timeout": "3s"}, "accounts": accounts}


def leaks(text: str, keys: dict[str, str]) -> list[str]:
    """Every case whose key, in any form it travelled in, has a run of 8 characters in
    ``text`` (in any case)."""
    found = []
    for case, key in keys.items():
        spec = HTTP_CASES.get(case)
        forms = wire_forms(key, basic_user=spec.basic_user if spec else None)
        found += [f"{case} ({form})" for form in find_secrets(text, forms)]
    return found


@pytest.mark.parametrize("parser", ["c", "python"])
def test_a_key_is_never_shown_in_any_form_it_travelled_in(
    parser: str, upstreams: tuple[dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    keys, bases = upstreams
    env = {"AIOHTTP_NO_EXTENSIONS": "1"} if parser == "python" else {}
    exp = ExporterProcess(config(keys, bases), tmp_path, args=["--log.level=debug"], env=env)
    try:
        exp.wait_ready()

        def all_down() -> dict[str, Any] | None:
            status = json.loads(http_get(f"{exp.url}/api/status")[1])
            failing = {a["account"]: a for a in status["accounts"] if a["errors"]}
            return failing if set(failing) == set(CASES) else None

        failing = wait_for(all_down, timeout=30)
        pages = {path: http_get(f"{exp.url}{path}")[1].decode() for path in ("/", "/api/status")}
        pages["/metrics"] = exp.metrics()
    finally:
        exp.stop()
    logs = exp.logs()
    # Every case failed the way its answer says (the echo was read, not skipped).
    reasons = {name: acct["errors"]["balance"]["reason"] for name, acct in failing.items()}
    assert reasons == {
        "error_body_echoes_url": "client_error",
        "error_body_echoes_full_url": "client_error",
        "error_body_echoes_key": "auth",
        "error_body_lowercases_key": "auth",
        "value_echoes_url": "bad_response",
        "timestamp_echoes_url": "bad_response",
        "refusal_in_a_200_echoes_url": "auth",
        "redirect_to_the_url": "bad_response",
        "text_error_page_echoes_url": "server_error",
        "basic_header_echoed": "auth",
        "basic_token_in_a_value": "bad_response",
        "basic_header_in_a_server_error": "server_error",
        "bearer_header_echoed": "auth",
        "scheme_header_echoed": "auth",
        "own_header_echoed": "auth",
        "body_echoed_in_a_refusal": "auth",
        "body_echoed_beside_a_200": "bad_response",
        "pool_name_echoes_key": "bad_response",
        "status_line_echoes_request": "connection",
        "request_line_as_answer": "connection",
        "header_echoes_request": "connection",
        "chunk_size_echoes_request": "connection",
        "connection_refused": "connection",
    }
    down = [line for line in logs.splitlines() if "account down" in line]
    assert len(down) >= len(CASES), logs
    # The provider's own text was logged, its key taken out of it.
    echoed = next(line for line in down if "account=error_body_echoes_url " in line)
    assert 'bad request /error_body_echoes_url/account.json?api_key=[REDACTED]"' in echoed, echoed
    basic = next(line for line in down if "account=basic_header_echoed " in line)
    assert "refused credentials [REDACTED]" in basic, basic  # the Basic header, whole
    # A pool is never named by the key: refused, and no series carries it.
    named = next(line for line in down if "account=pool_name_echoes_key " in line)
    assert "holds the account's key" in named, named
    assert leaks(logs, keys) == [], logs
    for path, text in pages.items():
        assert leaks(text, keys) == [], path
        assert "api_key=" not in text, path  # no URL with its query string is shown at all
