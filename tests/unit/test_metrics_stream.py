"""/metrics writes large bodies in slices; what arrives is the exposition, byte for byte."""

from __future__ import annotations

import gzip

import pytest
from aiohttp.test_utils import TestClient, TestServer

from exporter import web as web_module
from exporter.config import parse_config
from exporter.metrics import ExpositionCache
from exporter.model import PoolValues, Reading
from exporter.store import Store
from exporter.web import create_app


async def test_sliced_bodies_arrive_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small limits, so that this small exposition takes the paths of a 10,000-account one:
    # gzip bytes written in slices, plain bodies written from their parts.
    monkeypatch.setattr(web_module, "STREAM_SLICE", 1000)
    monkeypatch.setattr(web_module, "JOIN_LIMIT", 2000)
    store = Store()
    text = "accounts:\n" + "\n".join(
        f"  - {{name: a{i}, provider: fullenrich, api_key: key-{i}}}" for i in range(50)
    )
    store.set_accounts(parse_config(text, env={}).accounts)
    for i in range(50):
        store.record_success(f"a{i}", "balance", Reading(pools={"w": PoolValues(i)}), 0.1)
    cache = ExpositionCache(store)

    async def reload() -> list[str]:
        return []

    client = TestClient(TestServer(create_app(store, cache, reload)), auto_decompress=False)
    await client.start_server()
    try:
        exp = cache.current
        assert len(exp.text) > 5 * 1000
        r = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert r.status == 200
        assert int(r.headers["Content-Length"]) == len(exp.text)
        assert await r.read() == exp.text
        om = "application/openmetrics-text; version=1.0.0"
        r = await client.get("/metrics", headers={"Accept": om, "Accept-Encoding": "gzip"})
        assert gzip.decompress(await r.read()) == exp.openmetrics
        r = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
        assert gzip.decompress(await r.read()) == exp.text
        assert len(exp.text_gzip) > 1000  # (it was sliced)
        r = await client.get("/metrics", headers={"Accept": om, "Accept-Encoding": "identity"})
        assert await r.read() == exp.openmetrics
        r = await client.head("/metrics", headers={"Accept-Encoding": "identity"})
        assert r.status == 200 and await r.read() == b""
    finally:
        await client.close()
