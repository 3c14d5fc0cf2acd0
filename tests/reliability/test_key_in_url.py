"""A key sent in the query string (``auth: {type: query}``: SerpApi, ZeroBounce, Hunter) is
part of every request line, so an upstream that quotes the request quotes the key, encoded as
the URL carries it (``+`` as ``%2B``...). Through the real daemon, a hostile upstream echoes the
URL (or the key) in every place an answer can hold it: an error's JSON body, a value the parser
quotes, a redirect's target, a plain-text error page, a status line or a header that is not
HTTP; a failing one refuses the connection. Neither the key nor any of its URL forms, nor any
run of 8 of their characters, may reach a log line (debug level), /metrics, the status page or
/api/status. The daemon runs with aiohttp's C HTTP parser and with its pure-Python one, whose
complaints quote the bytes they could not read.
"""

from __future__ import annotations

import asyncio
import json
import random
import string
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from exporter.redaction import MIN_FRAGMENT, key_forms
from support import ExporterProcess, free_port, http_get, wait_for
from support.servers import AppThread

Answer = Callable[[web.Request, str], web.StreamResponse]


def new_key() -> str:
    """40 characters, with one a URL writes otherwise every few: its forms all differ."""
    rng = random.Random()
    parts = [
        "".join(rng.choices(string.ascii_letters, k=4)) + rng.choice("/+=%&? ") for _ in range(8)
    ]
    return "".join(parts)


def echo_url(request: web.Request) -> str:
    return request.path_qs  # the request's path and query string as sent: the key encoded


#: case -> (preset, what the hostile upstream answers). The value of ``request`` it echoes
#: holds the key as the exporter sent it.
HTTP_CASES: dict[str, tuple[str, Answer]] = {
    "error_body_echoes_url": (
        "serpapi",
        lambda r, key: web.json_response({"error": f"bad request {echo_url(r)}"}, status=400),
    ),
    "error_body_echoes_full_url": (
        "serpapi",
        lambda r, key: web.json_response({"error": f"no route for {r.url}"}, status=404),
    ),
    "error_body_echoes_key": (
        "zerobounce",
        lambda r, key: web.json_response({"error": f"api_key {key} is not valid"}, status=401),
    ),
    "value_echoes_url": (
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
    "timestamp_echoes_url": (
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
    "refusal_in_a_200_echoes_url": (
        "zerobounce",
        lambda r, key: web.json_response({"Credits": -1, "request": echo_url(r)}),
    ),
    "redirect_to_the_url": (
        "serpapi",
        lambda r, key: web.Response(
            status=302, headers={"Location": f"https://elsewhere.example{echo_url(r)}"}
        ),
    ),
    "text_error_page_echoes_url": (
        "zerobounce",
        lambda r, key: web.Response(status=500, text=f"Internal error at {r.url}"),
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
    """Answers /<case>/... as HTTP_CASES says, with that case's key."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        app = web.Application()
        app.router.add_route("*", "/{case}/{tail:.*}", self.answer)
        super().__init__(app)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        case = request.match_info["case"]
        return HTTP_CASES[case][1](request, self.keys[case])


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
    keys = {case: new_key() for case in CASES}
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
        preset = HTTP_CASES[case][0] if case in HTTP_CASES else "serpapi"
        accounts.append(
            {"name": case, "provider": preset, "api_key": keys[case], "base_url": bases[case]}
        )
    # A second poll of each (backoff after the first failure) runs within the test's wait.
    return {"defaults": {"interval": "20s", "timeout": "3s"}, "accounts": accounts}


def leaks(text: str, keys: dict[str, str]) -> list[str]:
    """Every case whose key has, in any of its URL forms, a run of MIN_FRAGMENT characters in
    ``text``."""
    found = []
    for case, key in keys.items():
        for form in key_forms(key):
            runs = {form[i : i + MIN_FRAGMENT] for i in range(len(form) - MIN_FRAGMENT + 1)}
            if any(run in text for run in runs):
                found.append(f"{case} ({form})")
    return found


@pytest.mark.parametrize("parser", ["c", "python"])
def test_query_string_key_never_shown(
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
        "value_echoes_url": "bad_response",
        "timestamp_echoes_url": "bad_response",
        "refusal_in_a_200_echoes_url": "auth",
        "redirect_to_the_url": "bad_response",
        "text_error_page_echoes_url": "server_error",
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
    assert leaks(logs, keys) == [], logs
    for path, text in pages.items():
        assert leaks(text, keys) == [], path
        assert "api_key=" not in text, path  # no URL with its query string is shown at all
