from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exporter.config import parse_config
from exporter.metrics import ExpositionCache
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.negotiate import wants_gzip
from exporter.store import Store
from exporter.web import STATUS_KEY, create_app, etag_matches
from support.leaks import find_secrets

KEY = "web-test-secret-key"


@pytest.fixture
async def setup() -> AsyncIterator[
    tuple[TestClient[web.Request, web.Application], Store, ExpositionCache, list[int]]
]:
    store = Store()
    store.set_accounts(
        parse_config(
            f"accounts: [{{name: a, provider: fullenrich, api_key: {KEY}}}, "
            f"{{name: b, provider: fullenrich, api_key: other-key}}]",
            env={},
        ).accounts
    )
    cache = ExpositionCache(store)
    reloads: list[int] = []

    async def reload() -> list[str]:
        reloads.append(1)
        return ["accounts[0].interval: bad"] if len(reloads) > 1 else []

    client = TestClient(TestServer(create_app(store, cache, reload)))
    await client.start_server()
    yield client, store, cache, reloads
    await client.close()


async def test_ready_health_and_metrics(
    setup: tuple[TestClient[web.Request, web.Application], Store, ExpositionCache, list[int]],
) -> None:
    client, store, cache, _ = setup
    assert (await client.get("/healthz")).status == 200
    r = await client.get("/readyz")
    assert r.status == 503 and "2 account(s)" in await r.text()
    store.record_success("a", "balance", Reading(pools={"workspace": PoolValues(remaining=3)}), 0.1)
    store.record_failure("b", "balance", PollError(Reason.AUTH, "HTTP 401: Unknown api key"), 0.1)
    assert (await client.get("/readyz")).status == 503  # polled, but /metrics not yet showing it
    await cache.refresh()
    assert (await client.get("/readyz")).status == 200

    r = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    body = await r.text()
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'credits_remaining{account="a",pool="workspace",provider="fullenrich"} 3.0' in body
    assert find_secrets(body, [KEY]) == []

    r = await client.get(
        "/metrics",
        headers={
            "Accept": "application/openmetrics-text;version=1.0.0",
            "Accept-Encoding": "identity",
        },
    )
    text = await r.text()
    assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")

    r = await client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    raw = await r.read()
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw) == cache.current.text
    assert raw == cache.current.text_gzip  # served from the cached compressed copy


async def test_status_page_and_api(
    setup: tuple[TestClient[web.Request, web.Application], Store, ExpositionCache, list[int]],
) -> None:
    client, store, _, _ = setup
    store.record_failure("b", "balance", PollError(Reason.AUTH, "HTTP 401: Unknown api key"), 0.1)
    store.record_success(
        "a", "balance", Reading(pools={"workspace": PoolValues(remaining=1234.5)}), 0.1
    )
    await client.app[STATUS_KEY].refresh()  # what its render task does after a change
    page = await (await client.get("/")).text()
    assert "1,234.5" in page and "/metrics" in page and "auth" in page
    assert find_secrets(page, [KEY]) == []
    data = await (await client.get("/api/status")).json()
    by_name = {a["account"]: a for a in data["accounts"]}
    assert by_name["a"]["state"] == "ok"
    assert by_name["b"]["state"] == "failing"
    assert by_name["b"]["errors"]["balance"]["reason"] == "auth"


async def test_reload_endpoint(
    setup: tuple[TestClient[web.Request, web.Application], Store, ExpositionCache, list[int]],
) -> None:
    client, _, _, reloads = setup
    assert (await client.get("/-/reload")).status == 405
    r = await client.post("/-/reload")
    assert r.status == 200 and (await r.json())["status"] == "ok"
    r = await client.post("/-/reload")
    assert r.status == 400 and (await r.json())["errors"] == ["accounts[0].interval: bad"]
    assert len(reloads) == 2


def test_wants_gzip() -> None:
    assert wants_gzip("gzip, deflate")
    assert wants_gzip("br;q=1.0, gzip;q=0.8")
    assert not wants_gzip("gzip;q=0")
    assert not wants_gzip("identity")
    assert not wants_gzip("")


def test_etag_matches() -> None:
    ours = 'W/"abc-1-0"'
    assert etag_matches(ours, ours)
    assert etag_matches('"abc-1-0"', ours)  # weak comparison
    assert etag_matches('W/"x", W/"abc-1-0"', ours)
    assert etag_matches("*", ours)
    assert not etag_matches('W/"abc-2-0"', ours)
    assert not etag_matches("", ours)


@pytest.mark.parametrize(
    ("accept", "accept_encoding", "openmetrics", "gzipped"),
    [
        ("application/openmetrics-text;q=0, text/plain", "gzip", False, True),
        ("application/openmetrics-text;q=0.1, text/plain;q=0.9", "", False, False),
        (  # what Prometheus sends
            "application/openmetrics-text;version=1.0.0;q=0.5,"
            "application/openmetrics-text;version=0.0.1;q=0.4,"
            "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            "gzip",
            True,
            True,
        ),
        ("text/plain", "gzip;q=0", False, False),
        ("*/*", "GZIP;Q=0", False, False),
        ("*/*", "gzip; q=0.000, identity", False, False),
        ("*/*", "br, *;q=0.5", False, True),
        ("*/*", "*;q=0", False, False),
        ("*/*", "gzip;q=nonsense", False, False),
    ],
)
async def test_q_values_are_honoured(
    setup: tuple[TestClient[web.Request, web.Application], Store, ExpositionCache, list[int]],
    accept: str,
    accept_encoding: str,
    openmetrics: bool,
    gzipped: bool,
) -> None:
    """q=0 means "not acceptable": neither the format nor the coding is used then."""
    client, _, _, _ = setup
    r = await client.get(
        "/metrics",
        headers={"Accept": accept, "Accept-Encoding": accept_encoding},
        auto_decompress=False,
    )
    assert r.status == 200
    kind = r.headers["Content-Type"].split(";")[0]
    assert kind == ("application/openmetrics-text" if openmetrics else "text/plain")
    assert (r.headers.get("Content-Encoding") == "gzip") is gzipped
