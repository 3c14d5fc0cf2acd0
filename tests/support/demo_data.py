"""The demo's data (``make demo``: DEMO_ACCOUNTS on a seeded Simulator) after a simulated day.

A real exporter only has a day of sparkline history after a day of running. Here the store's
clock is the simulator's clock, so the same providers, scheduler code and store fill 24 h of
history in a second or two: the page then looks like a demo that has run for a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import yaml
from aiohttp import web

from exporter.config import Config, parse_config
from exporter.daemon import new_session
from exporter.http import HttpClient
from exporter.metrics import ExpositionCache
from exporter.scheduler import poll_all_once
from exporter.simulator import DEMO_ACCOUNTS, Simulator
from exporter.store import Store
from exporter.web import create_app

T = TypeVar("T")


def demo_config(sim: Simulator) -> Config:
    """The config ``credits-exporter demo`` builds, pointing at ``sim``."""
    accounts = [{**a, "base_url": sim.base_url(str(a["provider"]))} for a in DEMO_ACCOUNTS]
    text = yaml.safe_dump({"defaults": {"interval": "15s", "timeout": "5s"}, "accounts": accounts})
    return parse_config(text, source="<demo>")


async def simulate_day(
    sim: Simulator, store: Store, config: Config, *, hours: float = 24, step: float = 900
) -> None:
    """Poll every demo account every ``step`` simulated seconds for ``hours``."""
    async with new_session() as session:
        http = HttpClient(session)
        for _ in range(int(hours * 3600 / step)):
            sim.advance(step)
            await poll_all_once(store, http, config)


class LoopThread:
    """An event loop in a daemon thread, to serve aiohttp apps next to synchronous selenium."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 120) -> T:
        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@contextlib.contextmanager
def demo_exporter(
    prepare: Callable[[Simulator, Store, Config], Awaitable[Any]] | None = None,
) -> Iterator[tuple[str, Simulator, Store]]:
    """The demo after a simulated day, its web app served on loopback: yields (url, sim, store)."""
    lt = LoopThread()
    sim = Simulator(seed_demo=True)
    store = Store(clock=sim.now)
    runner: web.AppRunner | None = None
    try:
        lt.run(sim.start("127.0.0.1", 0))
        config = demo_config(sim)
        store.set_reload_result(True)
        lt.run(simulate_day(sim, store, config))
        if prepare is not None:
            lt.run(prepare(sim, store, config))

        async def serve() -> str:
            nonlocal runner

            async def no_reload() -> list[str]:
                return []

            app = create_app(store, ExpositionCache(store, clock=sim.now), no_reload)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            return f"http://127.0.0.1:{port}"

        url = lt.run(serve())
        yield url, sim, store
    finally:
        if runner is not None:
            lt.run(runner.cleanup())
        lt.run(sim.stop())
        lt.close()
