"""The store's Readiness keeps the accounts still waiting for a first poll instead of walking
10,000 accounts: it must always agree with the definition (every endpoint of every account
polled once), through polls and reloads; /readyz waits for /metrics to serve those polls."""

from __future__ import annotations

import asyncio
import random

from exporter.accounts import AccountBase
from exporter.config import parse_config
from exporter.model import PollError, Reading, Reason
from exporter.store import Store
from support import daemon_polling


def accounts(names: list[str], interval: str = "5m") -> list[AccountBase]:
    text = "accounts:\n" + "\n".join(
        f"  - {{name: {n}, provider: {'theirstack' if n.startswith('t') else 'fullenrich'}, "
        f"api_key: k-{n}, interval: {interval}}}"
        for n in names
    )
    return parse_config(text, env={}).accounts


def test_ready_agrees_with_its_definition() -> None:
    rng = random.Random(5)
    store = Store()
    pool = [f"t{i}" for i in range(6)] + [f"f{i}" for i in range(6)]
    readiness = store.readiness
    assert not readiness.polled  # the accounts are not known yet
    store.set_accounts([])
    assert readiness.polled  # nothing to wait for (polled: none waiting)
    for _ in range(300):
        roll = rng.random()
        if roll < 0.1:
            names = rng.sample(pool, rng.randint(0, len(pool)))
            changed = {n for n in names if rng.random() < 0.3}
            store.set_accounts(
                [
                    a.model_copy(update={"interval": 60.0}) if a.name in changed else a
                    for a in accounts(names)
                ]
            )
        elif store.accounts:
            name = rng.choice(list(store.accounts))
            endpoint = rng.choice(list(store.accounts[name].endpoints))
            if roll < 0.6:
                store.record_success(name, endpoint, Reading(), 0.1)
            else:
                store.record_failure(name, endpoint, PollError(Reason.TIMEOUT, "t"), 0.1)
        waiting = {
            name
            for name, s in store.accounts.items()
            if any(ep.polls_total == 0 for ep in s.endpoints.values())
        }
        assert readiness.polled is (not waiting)
        assert {name for name in store.accounts if readiness.waiting(name)} == waiting
        assert readiness._polled.is_set() is (not waiting)  # what wait_polled() waits for


async def test_readyz_waits_for_an_exposition_of_every_first_poll() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from exporter.metrics import ExpositionCache
    from exporter.web import create_app

    store = Store()
    cache = ExpositionCache(store)

    async def reload() -> list[str]:
        return []

    client = TestClient(TestServer(create_app(store, cache, reload)))
    await client.start_server()
    try:
        # Before the accounts are known, nothing says every first poll is in.
        r = await client.get("/readyz")
        assert r.status == 503 and "accounts not loaded yet" in await r.text()
        store.set_accounts([])
        await cache.refresh()
        assert (await client.get("/readyz")).status == 200  # no account: nothing to wait for
        # Accounts arrive (start-up, a reload) while /metrics still serves the old rendering.
        store.set_accounts(accounts(["t1", "f1"]))
        assert (await client.get("/readyz")).status == 503
        for name, state in store.accounts.items():
            for endpoint in state.endpoints:
                store.record_success(name, endpoint, Reading(), 0.1)
        assert store.readiness.polled
        assert (await client.get("/readyz")).status == 503  # polled, not yet rendered
        await cache.refresh()
        assert (await client.get("/readyz")).status == 200
    finally:
        await client.close()


async def test_status_page_first_renders_once_metrics_serves_every_first_poll() -> None:
    """The status page's first rendering waits for start-up (it would compete with the first
    poll wave and /metrics' rendering of it), until /readyz would say ready."""
    gate = asyncio.Event()
    async with daemon_polling(gate) as daemon:
        await asyncio.sleep(0.5)  # start-up: the only poll waits for its answer
        assert daemon.status.stats.renders == 0 and daemon.status.current.starting
        gate.set()
        await asyncio.wait_for(daemon.store.readiness.wait_ready(), 10)
        for _ in range(500):
            if daemon.status.stats.renders:
                break
            await asyncio.sleep(0.01)
        (row,) = daemon.status.current.rows
        assert row.severity == "ok" and daemon.status.stats.renders == 1
