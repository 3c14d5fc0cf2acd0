"""Polling loops against a real loopback server: timing, backoff, Retry-After, isolation."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.config import parse_config
from exporter.http import HttpClient
from exporter.model import Reason
from exporter.scheduler import Scheduler, next_delay
from exporter.store import Store
from support import run_scheduler


def test_next_delay_success_jitter() -> None:
    assert next_delay(100, 0, rand=lambda: 0.5) == 100
    assert next_delay(100, 0, rand=lambda: 0.0) == pytest.approx(90)
    assert next_delay(100, 0, rand=lambda: 1.0) == pytest.approx(110)


def test_next_delay_backoff_capped_at_interval() -> None:
    mid = lambda: 0.5  # noqa: E731
    delays = [next_delay(320, n, rand=mid) for n in range(1, 9)]
    assert delays == [10, 20, 40, 80, 160, 320, 320, 320]
    # Short intervals: base is at least a second but never more than the interval.
    assert next_delay(0.5, 1, rand=mid) == 0.5
    assert next_delay(10, 1, rand=mid) == 1
    assert next_delay(10, 50, rand=mid) == 10


def test_next_delay_obeys_retry_after() -> None:
    assert next_delay(60, 1, retry_after=600, rand=lambda: 0.5) == 600
    assert next_delay(60, 3, retry_after=1, rand=lambda: 0.5) == pytest.approx(60 / 32 * 4)


@dataclass
class Upstream:
    calls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    mode: dict[str, str] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls[key].append(time.monotonic())
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
            return web.json_response({"balance": 10})
        finally:
            self.in_flight -= 1


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    up = Upstream()
    app = web.Application()
    app.router.add_get("/api/v2/account/credits", up.handle)
    server = TestServer(app)
    await server.start_server()
    yield up, str(server.make_url("/api/v2"))
    await server.close()


def accounts(base: str, specs: list[tuple[str, str]], extra: str = "") -> str:
    # These tests are about scheduling: no per-key pacing (FullEnrich's default is 1/s).
    lines = [
        f"  - {{name: {n}, provider: fullenrich, api_key: {n}-key, base_url: '{base}', interval: {i}, rate_limit: unlimited{extra}}}"
        for n, i in specs
    ]
    return "accounts:\n" + "\n".join(lines)


async def test_first_poll_immediate_then_interval(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    t0 = time.monotonic()
    await run_scheduler(accounts(base, [("a", "0.4s")]), 1.5)
    calls = up.calls["a-key"]
    assert calls[0] - t0 < 0.2
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert 3 <= len(calls) <= 5
    assert all(0.35 <= g <= 0.5 for g in gaps), gaps


async def test_failing_account_does_not_delay_others(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.mode["bad-key"] = "hang"
    store = await run_scheduler(
        accounts(base, [("good", "0.3s"), ("bad", "0.3s")], ", timeout: 0.5s"), 1.6
    )
    assert len(up.calls["good-key"]) >= 5
    bad = store.accounts["bad"].endpoints["balance"]
    assert bad.up is False and bad.errors_total[Reason.TIMEOUT] >= 1
    assert store.accounts["good"].endpoints["balance"].up is True


async def test_backoff_then_recovery_resets(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.mode["a-key"] = "500"
    store = Store()
    async with aiohttp.ClientSession() as session:
        sched = Scheduler(
            store, HttpClient(session), parse_config(accounts(base, [("a", "2s")]), env={})
        )
        await sched.start()
        await asyncio.sleep(2.5)
        fails = len(up.calls["a-key"])
        # interval 2s -> base backoff 1s: polls at ~0, ~1, ~3 (1 + 2): faster than the interval
        # after one failure, never faster than the backoff base.
        assert 2 <= fails <= 3
        gaps = [b - a for a, b in zip(up.calls["a-key"], up.calls["a-key"][1:], strict=False)]
        assert all(g >= 0.85 for g in gaps), gaps
        ep = store.accounts["a"].endpoints["balance"]
        assert ep.up is False and ep.errors_total[Reason.SERVER_ERROR] == fails
        up.mode["a-key"] = "ok"
        await asyncio.sleep(2.5)
        assert ep.up is True and ep.consecutive_failures == 0
        await sched.stop()


async def test_retry_after_obeyed(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.mode["a-key"] = "429"
    store = await run_scheduler(accounts(base, [("a", "0.3s")]), 1.5)
    # Retry-After: 2 beats the 0.3s interval: one call only in 1.5s.
    assert len(up.calls["a-key"]) == 1
    assert store.accounts["a"].endpoints["balance"].errors_total == {Reason.RATE_LIMITED: 1}


async def test_per_provider_concurrency_cap(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    for i in range(10):
        up.mode[f"a{i}-key"] = "slow"
    text = "providers: {fullenrich: {max_concurrency: 3}}\n" + accounts(
        base, [(f"a{i}", "10s") for i in range(10)]
    )
    await run_scheduler(text, 1.2)
    assert up.max_in_flight == 3
    assert sum(len(v) for v in up.calls.values()) == 10


async def test_bad_response_never_ends_loop(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.mode["a-key"] = "garbage"
    store = await run_scheduler(accounts(base, [("a", "0.5s")]), 1.8)
    ep = store.accounts["a"].endpoints["balance"]
    assert ep.errors_total[Reason.BAD_RESPONSE] >= 2


async def test_reload_keeps_unchanged_schedule(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    store = Store()
    async with aiohttp.ClientSession() as session:
        cfg = parse_config(accounts(base, [("a", "5s"), ("b", "5s")]), env={})
        sched = Scheduler(store, HttpClient(session), cfg)
        await sched.start()
        await asyncio.sleep(0.3)
        task_a = sched.tasks[("a", "balance")]
        state_a = store.accounts["a"]
        new = parse_config(accounts(base, [("a", "5s"), ("c", "5s")]), env={})
        await sched.apply(new)
        await asyncio.sleep(0.3)
        assert sched.tasks[("a", "balance")] is task_a
        assert store.accounts["a"] is state_a
        assert set(store.accounts) == {"a", "c"}
        assert ("b", "balance") not in sched.tasks
        assert len(up.calls["a-key"]) == 1  # not re-polled by the reload
        assert len(up.calls["c-key"]) == 1  # the added account starts at once
        await sched.stop()


async def test_reload_applies_key_and_interval_in_place(upstream: tuple[Upstream, str]) -> None:
    """Issue 11.11: a rotated key is used from the next poll, a shorter interval at once, and the
    account keeps its loop and state."""
    up, base = upstream

    def config(key: str, interval: str) -> str:
        return (
            f"accounts: [{{name: a, provider: fullenrich, api_key: {key}, base_url: '{base}', "
            f"interval: {interval}, rate_limit: unlimited}}]"
        )

    store = Store()
    async with aiohttp.ClientSession() as session:
        sched = Scheduler(store, HttpClient(session), parse_config(config("old-key", "1h"), env={}))
        await sched.start()
        for _ in range(50):
            await asyncio.sleep(0.02)
            if store.accounts["a"].endpoints["balance"].polls_total:
                break
        loop = sched.tasks[("a", "balance")]
        await sched.apply(parse_config(config("new-key", "0.3s"), env={}))
        state = store.accounts["a"]
        assert sched.tasks[("a", "balance")] is loop and loop.state is state
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len(up.calls["new-key"]) >= 2:
                break
        assert len(up.calls["old-key"]) == 1
        assert len(up.calls["new-key"]) >= 2  # the shorter interval did not wait for the hour
        assert state.endpoints["balance"].polls_total == 1 + len(up.calls["new-key"])
        # A longer interval applies from the next poll on: at most one more poll.
        await sched.apply(parse_config(config("new-key", "1h"), env={}))
        calls = len(up.calls["new-key"])
        await asyncio.sleep(1.0)
        assert len(up.calls["new-key"]) - calls <= 1
        await sched.stop()


async def test_reload_with_a_shorter_interval_keeps_retry_after(
    upstream: tuple[Upstream, str],
) -> None:
    up, base = upstream
    up.mode["a-key"] = "429"  # Retry-After: 2
    store = Store()
    async with aiohttp.ClientSession() as session:
        sched = Scheduler(
            store, HttpClient(session), parse_config(accounts(base, [("a", "1h")]), env={})
        )
        await sched.start()
        for _ in range(50):
            await asyncio.sleep(0.02)
            if store.accounts["a"].endpoints["balance"].polls_total:
                break
        await sched.apply(parse_config(accounts(base, [("a", "0.2s")]), env={}))
        await asyncio.sleep(1.0)
        assert len(up.calls["a-key"]) == 1  # the provider said 2 s: the reload does not hurry it
        await sched.stop()


async def test_cancellation_is_clean(upstream: tuple[Upstream, str]) -> None:
    up, base = upstream
    up.mode["a-key"] = "hang"
    store = Store()
    async with aiohttp.ClientSession() as session:
        sched = Scheduler(
            store, HttpClient(session), parse_config(accounts(base, [("a", "1s")]), env={})
        )
        await sched.start()
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        await sched.stop()
        assert time.monotonic() - t0 < 1
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in others if t.get_name().startswith("poll ")]


class _UnwritableLog:
    """The poll loop's log lines fail, as writing to a pipe whose reader went away does."""

    def __getattr__(self, name: str) -> object:
        def write(event: str, **fields: object) -> None:
            if event.startswith(("account", "poll")) and event != "accounts applied":
                raise BrokenPipeError(32, "Broken pipe")

        return write


async def test_a_loop_outlives_any_failure_of_its_own(
    upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logging "account down" fails (and every later line of the loop): the loop polls on."""
    import exporter.scheduler

    up, base = upstream
    up.mode["a-key"] = "500"
    monkeypatch.setattr(exporter.scheduler, "log", _UnwritableLog())
    store = await run_scheduler(accounts(base, [("a", "0.3s")]), 1.6)
    assert len(up.calls["a-key"]) >= 3
    assert store.accounts["a"].endpoints["balance"].polls_total >= 3
