"""Between polls a loop is a timer, not a task; stop() and a reload leave neither behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.config import parse_config
from exporter.http import HttpClient
from exporter.scheduler import Scheduler
from exporter.store import Store


@pytest.fixture
async def base() -> AsyncIterator[str]:
    async def credits(_request: web.Request) -> web.Response:
        return web.json_response({"balance": 1})

    app = web.Application()
    app.router.add_get("/api/v2/account/credits", credits)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/api/v2"))
    await server.close()


def config(base: str, names: list[str]) -> str:
    return "accounts:\n" + "\n".join(
        f"  - {{name: {n}, provider: fullenrich, api_key: k-{n}, base_url: '{base}', "
        "interval: 1h, rate_limit: unlimited}"
        for n in names
    )


def polls() -> set[asyncio.Task[object]]:
    """The scheduler's tasks (the test server keeps its own connection tasks)."""
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("poll ")}


async def test_idle_loops_are_timers(base: str) -> None:
    store = Store()
    async with aiohttp.ClientSession() as session:
        sched = Scheduler(
            store, HttpClient(session), parse_config(config(base, ["a", "b"]), env={})
        )
        await sched.start()
        for _ in range(100):
            if store.readiness.polled:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        assert store.readiness.polled
        assert not polls()  # both polled; nothing runs until the next poll is due
        for loop in sched.tasks.values():
            assert loop.task is None and loop.handle is not None
            assert 3000 < loop.handle.when() - asyncio.get_running_loop().time() < 4000

        # A reload that removes an account cancels its timer; the other keeps its own.
        kept = sched.tasks[("a", "balance")]
        handle = kept.handle
        assert handle is not None
        await sched.apply(parse_config(config(base, ["a"]), env={}))
        assert list(sched.tasks) == [("a", "balance")] and sched.tasks[("a", "balance")] is kept
        assert kept.handle is handle and not handle.cancelled()

        await sched.stop()
        assert not sched.tasks and handle.cancelled() and not polls()
