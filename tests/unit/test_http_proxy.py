"""Proxies from the environment (HTTP_PROXY, NO_PROXY) still apply, looked up once per host
instead of on every request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.daemon import new_session
from exporter.http import _env_proxy, env_proxy
from exporter.model import PollError
from support import account_client


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    _env_proxy.cache_clear()
    yield monkeypatch
    _env_proxy.cache_clear()


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[TestServer, list[str]]]:
    seen: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        seen.append(str(request.url))  # absolute-form: the URL the client asked for
        return web.json_response({"balance": 7})

    app = web.Application()
    app.router.add_get("/api/credits", forward)
    server = TestServer(app)
    await server.start_server()
    yield server, seen
    await server.close()


def test_env_proxy_lookup(clean_proxy_env: pytest.MonkeyPatch) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    clean_proxy_env.setenv("HTTPS_PROXY", "https://tls-proxy.internal:3129")  # aiohttp can't
    clean_proxy_env.setenv("NO_PROXY", "localhost,.corp.example")
    assert env_proxy("http://api.example.com/x") == "http://proxy.internal:3128"
    assert env_proxy("https://api.example.com/x") is None
    assert env_proxy("http://billing.corp.example/x") is None
    assert env_proxy("http://localhost:9/x") is None


async def test_requests_go_through_the_proxy_unless_bypassed(
    clean_proxy_env: pytest.MonkeyPatch, proxy: tuple[TestServer, list[str]]
) -> None:
    server, seen = proxy
    clean_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    clean_proxy_env.setenv("NO_PROXY", "bypassed.invalid")
    async with new_session() as session:
        http = account_client(session)
        resp = await http.request_json("GET", "http://provider.invalid/api/credits")
        assert resp.data == {"balance": 7}
        assert seen == ["http://provider.invalid/api/credits"]
        with pytest.raises(PollError) as exc:  # direct: the name does not resolve
            await http.request_json("GET", "http://bypassed.invalid/api/credits")
        assert exc.value.reason.value == "connection"
        assert len(seen) == 1
        assert isinstance(session, aiohttp.ClientSession) and not session.trust_env
