"""Polling loops on virtual time: a Scheduler whose timers between polls fire when the test
says, its rate limiters on the same clock, and a recording upstream on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.config import parse_config
from exporter.http import HttpClient
from exporter.ratelimit import RateLimits
from exporter.scheduler import PollLoop, Scheduler
from exporter.store import Store

T = TypeVar("T")


@dataclass
class Upstream:
    """A FullEnrich-shaped credits API on loopback that records every call by API key, at the
    time ``clock`` says, and answers as ``mode`` (by key) says: ``ok``, ``slow`` (0.3 s),
    ``hang`` (30 s), ``500``, ``429`` (``Retry-After: 2``) or ``garbage`` (HTML); ``status``
    and ``headers`` (by key) change an ``ok`` answer's status and headers."""

    clock: Callable[[], float] = time.monotonic
    calls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    mode: dict[str, str] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls[key].append(self.clock())
        mode = self.mode.get(key, "ok")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if mode == "slow":
                await asyncio.sleep(0.3)
            if mode == "hang":
                await asyncio.sleep(30)
            if mode == "500":
                return web.json_response({"message": "boom"}, status=500)
            if mode == "429":
                return web.json_response(
                    {"message": "slow"}, status=429, headers={"Retry-After": "2"}
                )
            if mode == "garbage":
                return web.Response(text="<html>", content_type="text/html")
            return web.json_response(
                {"balance": 10}, status=self.status.get(key, 200), headers=self.headers.get(key)
            )
        finally:
            self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve it on a free port; yields the base URL a fullenrich account's ``base_url``
        takes."""
        app = web.Application()
        app.router.add_get("/api/v2/account/credits", self.handle)
        async with TestServer(app) as server:
            yield str(server.make_url("/api/v2"))


def fullenrich_accounts(base: str, specs: list[tuple[str, str]], extra: str = "") -> str:
    """A config of fullenrich accounts at ``base``: (name, interval) each, key ``<name>-key``,
    no pacing of their keys unless ``extra`` (more flow-mapping entries) sets it."""
    rate = "" if "rate_limit" in extra else ", rate_limit: unlimited"
    lines = [
        f"  - {{name: {n}, provider: fullenrich, api_key: {n}-key, base_url: '{base}', "
        f"interval: {i}{rate}{extra}}}"
        for n, i in specs
    ]
    return "accounts:\n" + "\n".join(lines)


class VirtualTime:
    """Time for a :class:`~exporter.scheduler.Scheduler` that moves only when the test says.

    The scheduler's timers between polls (``loop.call_later``) are recorded with the delay
    asked for (:attr:`delays`) and fire only through :meth:`fire` or :meth:`run`; its rate
    limiters take :meth:`clock` and :meth:`sleep` (:meth:`limits`). Everything else (sockets,
    request timeouts, ``asyncio.sleep``) keeps the event loop's real time, so the upstream is a
    real server and a test asserts what was scheduled, never how long something took."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        #: Every delay the scheduler asked for, by (account, endpoint), in order.
        self.delays: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._timers: dict[PollLoop, tuple[asyncio.TimerHandle, Callable[[PollLoop], None]]] = {}
        self._sleepers: dict[asyncio.Task[Any] | None, tuple[float, asyncio.Future[None]]] = {}
        real = self.loop.call_later

        def call_later(delay: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(getattr(callback, "__self__", None), Scheduler):
                return real(delay, callback, *args, **kwargs)
            (poll_loop,) = args
            self.delays[(poll_loop.state.name, poll_loop.endpoint)].append(delay)
            handle = asyncio.TimerHandle(self.now + delay, callback, args, self.loop)
            self._timers[poll_loop] = (handle, callback)
            return handle

        monkeypatch.setattr(self.loop, "call_later", call_later)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = self.loop.create_future()
        self._sleepers[asyncio.current_task()] = (self.now + seconds, future)
        await future

    def limits(self) -> RateLimits:
        return RateLimits(clock=self.clock, sleep=self.sleep)

    def pending(self, poll_loop: PollLoop) -> asyncio.TimerHandle | None:
        """The loop's timer that has not fired (nor been cancelled) yet."""
        handle, _ = self._timers.get(poll_loop, (None, None))
        return None if handle is None or handle.cancelled() else handle

    def fire(self, poll_loop: PollLoop) -> None:
        """Move time to the loop's pending timer and fire it: its next poll starts."""
        handle, callback = self._timers.pop(poll_loop)
        assert not handle.cancelled(), "the loop's timer was cancelled"
        self.now = max(self.now, handle.when())
        callback(poll_loop)

    async def poll_again(self, scheduler: Scheduler, poll_loop: PollLoop, times: int = 1) -> None:
        """Fire the loop's timer and let its poll finish, ``times`` times over."""
        for _ in range(times):
            self.fire(poll_loop)
            await self.settle(scheduler)

    def _blocked(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` waits for virtual time: asleep, or queued behind a limiter's lock
        whose holder is asleep."""
        sleeping = self._sleepers.get(task)
        if sleeping is not None and not sleeping[1].done():
            return True
        coro: Any = task.get_coro()
        while getattr(coro, "cr_await", None) is not None and hasattr(coro.cr_await, "cr_code"):
            coro = coro.cr_await
        return getattr(coro, "cr_code", None) is asyncio.Lock.acquire.__code__

    async def settle(self, scheduler: Scheduler, timeout: float = 30.0) -> None:
        """Let the real world catch up: wait until every poll in flight waits for virtual
        time (twice in a row, so that a task just woken has run)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(0.001)
            live = [t for loop in scheduler.tasks.values() if (t := loop.task) is not None]
            quiet = quiet + 1 if all(self._blocked(t) for t in live) else 0
            assert time.monotonic() < deadline, "the polls in flight never settled"

    async def run(self, scheduler: Scheduler, until: float) -> None:
        """Run the scheduler up to ``until`` seconds of virtual time from now: in order, every
        timer and sleep that falls due, each once the polls before it have settled."""
        end = self.now + until
        while True:
            await self.settle(scheduler)
            timers = [
                (h.when(), loop) for loop, (h, _) in self._timers.items() if not h.cancelled()
            ]
            sleeps = [(when, task) for task, (when, f) in self._sleepers.items() if not f.done()]
            next_timer = min(timers, key=lambda t: t[0], default=None)
            next_sleep = min(sleeps, key=lambda s: s[0], default=None)
            if next_sleep is not None and (next_timer is None or next_sleep[0] < next_timer[0]):
                if next_sleep[0] > end:
                    break
                self.now = max(self.now, next_sleep[0])
                self._sleepers.pop(next_sleep[1])[1].set_result(None)
            elif next_timer is not None and next_timer[0] <= end:
                self.fire(next_timer[1])
            else:
                break
        self.now = max(self.now, end)


async def until(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Await until ``check`` returns something truthy (the event loop runs meanwhile); fail
    after ``timeout`` seconds, a deadline for a hung test, not a measure of speed."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.005)
    return value


@dataclass
class Polling:
    """A real upstream, a store and virtual time: :meth:`start` builds a Scheduler on them."""

    upstream: Upstream
    base: str
    time: VirtualTime
    store: Store
    http: HttpClient
    schedulers: list[Scheduler] = field(default_factory=list)

    async def start(self, config_text: str) -> Scheduler:
        scheduler = Scheduler(self.store, self.http, parse_config(config_text, env={}))
        scheduler.limits = self.time.limits()
        await scheduler.start()
        self.schedulers.append(scheduler)
        return scheduler


@contextlib.asynccontextmanager
async def polling(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Polling]:
    """A :class:`Polling` rig; its schedulers are stopped at the end."""
    vt = VirtualTime(monkeypatch)
    upstream = Upstream(clock=vt.clock)
    async with upstream.serve() as base, aiohttp.ClientSession() as session:
        rig = Polling(upstream, base, vt, Store(), HttpClient(session))
        try:
            yield rig
        finally:
            for scheduler in rig.schedulers:
                await scheduler.stop()
