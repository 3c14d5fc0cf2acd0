"""An account's client against a real aiohttp server on loopback: every failure is classified."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.http import connection_problem, host_of, parse_retry_after
from exporter.model import PollError, Reason
from support import account_client
from support.leaks import find_secrets

Handler = Callable[[web.Request], Awaitable[web.Response]]

SECRET = "sk-test-secret-value"


async def ok(request: web.Request) -> web.Response:
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    return web.json_response({"balance": 5})


def status_handler(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return handler


async def html(request: web.Request) -> web.Response:
    return web.Response(text="<html>oops</html>", content_type="text/html")


async def invalid_json(request: web.Request) -> web.Response:
    return web.Response(text="{not json", content_type="application/json")


async def huge(request: web.Request) -> web.Response:
    return web.Response(body=b"[" + b"1," * 600_000 + b"1]", content_type="application/json")


async def huge_chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "application/json"
    await resp.prepare(request)
    for _ in range(40):
        await resp.write(b" " * 65536)
    return resp


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


async def trickle(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "application/json"
    await resp.prepare(request)
    for _ in range(100):
        await resp.write(b" ")
        await asyncio.sleep(0.1)
    return resp


async def reset(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Length": "1000"})
    resp.content_type = "application/json"
    await resp.prepare(request)
    await resp.write(b'{"balance": ')
    assert request.transport is not None
    request.transport.abort()
    return resp


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("http://evil.example.com/steal?x=1")


async def echo_secret(request: web.Request) -> web.Response:
    return web.json_response({"message": f"Unknown api key {SECRET}"}, status=401)


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/html", html)
    app.router.add_get("/invalid", invalid_json)
    app.router.add_get("/huge", huge)
    app.router.add_get("/huge-chunked", huge_chunked)
    app.router.add_get("/slow", slow)
    app.router.add_get("/trickle", trickle)
    app.router.add_get("/reset", reset)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/echo", echo_secret)
    for status in (400, 401, 402, 403, 404, 422, 500, 502, 503):
        app.router.add_get(f"/s{status}", status_handler(status, {"message": f"m{status}"}))
    app.router.add_get(
        "/s429", status_handler(429, {"message": "slow down"}, {"Retry-After": "42"})
    )
    date = email.utils.formatdate(time.time() + 120, usegmt=True)
    app.router.add_get("/s503date", status_handler(503, None, {"Retry-After": date}))
    srv = TestServer(app)
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    client: aiohttp.ClientSession, server: TestServer, path: str, timeout: float = 2
) -> object:
    resp = await account_client(client, secret=SECRET, timeout=timeout).request_json(
        "GET",
        str(server.make_url(path)),
        headers={"Authorization": f"Bearer {SECRET}"},
        error_message=lambda d: d["message"],
    )
    return resp.data


async def fails(
    client: aiohttp.ClientSession, server: TestServer, path: str, timeout: float = 2
) -> PollError:
    with pytest.raises(PollError) as info:
        await call(client, server, path, timeout)
    assert find_secrets(str(info.value), [SECRET]) == []
    return info.value


async def test_ok(client: aiohttp.ClientSession, server: TestServer) -> None:
    assert await call(client, server, "/ok") == {"balance": 5}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, Reason.CLIENT_ERROR),
        (401, Reason.AUTH),
        (402, Reason.PAYMENT_REQUIRED),
        (403, Reason.AUTH),
        (404, Reason.CLIENT_ERROR),
        (422, Reason.CLIENT_ERROR),
        (500, Reason.SERVER_ERROR),
        (502, Reason.SERVER_ERROR),
        (503, Reason.SERVER_ERROR),
    ],
)
async def test_statuses(
    client: aiohttp.ClientSession, server: TestServer, status: int, reason: Reason
) -> None:
    err = await fails(client, server, f"/s{status}")
    assert err.reason is reason
    assert err.status == status
    assert err.message == f"HTTP {status}: m{status}"


async def test_retry_after_seconds(client: aiohttp.ClientSession, server: TestServer) -> None:
    err = await fails(client, server, "/s429")
    assert err.reason is Reason.RATE_LIMITED and err.retry_after == 42


async def test_retry_after_http_date(client: aiohttp.ClientSession, server: TestServer) -> None:
    err = await fails(client, server, "/s503date")
    assert err.reason is Reason.SERVER_ERROR
    assert err.retry_after is not None and 100 < err.retry_after <= 121


@pytest.mark.parametrize(
    ("path", "reason", "fragment"),
    [
        ("/html", Reason.BAD_RESPONSE, "not JSON (text/html)"),
        ("/invalid", Reason.BAD_RESPONSE, "not JSON"),
        ("/huge", Reason.BAD_RESPONSE, "cap"),
        ("/huge-chunked", Reason.BAD_RESPONSE, "cap"),
        ("/reset", Reason.CONNECTION, "connection"),
        ("/redirect", Reason.BAD_RESPONSE, "redirect (HTTP 302) to http://evil.example.com"),
    ],
)
async def test_bad_answers(
    client: aiohttp.ClientSession, server: TestServer, path: str, reason: Reason, fragment: str
) -> None:
    err = await fails(client, server, path)
    assert err.reason is reason
    assert fragment in err.message
    assert "steal" not in err.message  # never the path or query of a redirect target


async def test_timeouts(client: aiohttp.ClientSession, server: TestServer) -> None:
    assert (await fails(client, server, "/slow", timeout=0.3)).reason is Reason.TIMEOUT
    assert (await fails(client, server, "/trickle", timeout=0.5)).reason is Reason.TIMEOUT


async def test_connection_refused(client: aiohttp.ClientSession) -> None:
    with pytest.raises(PollError) as info:
        await account_client(client, secret=SECRET, timeout=2).request_json(
            "GET", "http://127.0.0.1:1/x"
        )
    assert info.value.reason is Reason.CONNECTION


async def test_provider_message_is_sanitised(
    client: aiohttp.ClientSession, server: TestServer
) -> None:
    err = await fails(client, server, "/echo")
    assert err.message == "HTTP 401: Unknown api key [REDACTED]"


def test_helpers() -> None:
    assert parse_retry_after("10") == 10
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0
    assert (
        host_of("https://u:p@api.example.com:8443/path?api_key=x") == "https://api.example.com:8443"
    )


async def _raw_server(answer: bytes | None, reset: bool = False) -> asyncio.Server:
    """A TCP server that reads the request, then writes ``answer`` raw (not HTTP), or closes
    (with a reset, if asked) without a word."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        if answer is not None:
            writer.write(answer)
            await writer.drain()
        if reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("answer", "reset", "message"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", False, "the answer is not valid HTTP (bad status line)"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n{}",
            False,
            "the answer is not valid HTTP (invalid character in Content-Length)",
        ),
        (None, False, "the server closed the connection without answering"),
        (None, True, "connection failed: connection reset by peer"),
    ],
)
async def test_connection_failures_say_what_happened(
    answer: bytes | None, reset: bool, message: str
) -> None:
    server = await _raw_server(
        answer.replace(b"OpenSSH", SECRET.encode()) if answer else None, reset
    )
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(PollError) as info:
                await account_client(session, secret=SECRET).request_json(
                    "GET", f"http://127.0.0.1:{port}/x"
                )
    finally:
        server.close()
        await server.wait_closed()
    assert info.value.reason is Reason.CONNECTION
    assert info.value.message == message
    assert "Error" not in info.value.message  # words, not exception names


#: A key with upper-case letters: lower-cased, it would escape redaction.
MIXED_KEY = "SeCrEtKeyABCDEFGHxyz"


@pytest.mark.parametrize(
    ("parser_message", "said"),
    [
        # llhttp (aiohttp's C parser): the complaint, then the offending bytes after a colon.
        (
            f"Bad status line:\n  Invalid status code:\n\n  b'HTTP/1.1 4OO GET /a?k={MIXED_KEY}'",
            "bad status line",
        ),
        (
            f"Invalid character in Content-Length:\n\n  b'Content-Length: x{MIXED_KEY}'",
            "invalid character in Content-Length",
        ),
        # aiohttp's pure-Python parser (AIOHTTP_NO_EXTENSIONS=1) quotes the bytes at once, or
        # says nothing but the bytes.
        (f"Bad status line 'HTTP/1.1 4OO GET /a?k={MIXED_KEY}'", "bad status line"),
        (f"zz{MIXED_KEY}", "unreadable"),
        (f"zz {MIXED_KEY}/+=", "unreadable"),
        ("", "unreadable"),
    ],
)
def test_parser_complaints_never_carry_the_answer(parser_message: str, said: str) -> None:
    """What the HTTP parser said about an answer that is not HTTP: its complaint only, never
    the bytes it quotes (an upstream that echoes the request echoes a query-string key)."""
    exc = aiohttp.ClientResponseError(None, (), status=400, message=parser_message)  # type: ignore[arg-type]
    assert connection_problem(exc, "http://x.example/a") == f"the answer is not valid HTTP ({said})"


async def test_connection_refused_in_words() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PollError) as info:
            await account_client(session, secret=SECRET).request_json(
                "GET", f"http://127.0.0.1:{port}/x"
            )
    assert info.value.message == f"cannot connect to http://127.0.0.1:{port}: connection refused"
