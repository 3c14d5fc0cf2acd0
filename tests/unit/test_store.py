from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import parse_config
from exporter.exposition import Exposition, _Work
from exporter.metrics import ExpositionCache
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.store import ConsumedCounter, Store
from support.reference import StoreCollector


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def config(text: str) -> Any:
    return parse_config(text, env={})


def samples(cache: ExpositionCache) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(cache.current.text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_counter_no_jump_growth_rollover_and_window_exit() -> None:
    c = ConsumedCounter()
    c.update({"2026-11-20": 50, "2026-11-21": 30, "2026-11-22": 10})
    assert c.total == 0  # start-up sets the baseline only
    c.update({"2026-11-20": 50, "2026-11-21": 30, "2026-11-22": 14})
    assert c.total == 4  # today's bucket grew by 4
    c.update({"2026-11-21": 30, "2026-11-22": 15, "2026-11-23": 3})
    assert c.total == 8  # +1 growth, +3 new day; 11-20 left the window: nothing taken away
    c.update({"2026-11-22": 12, "2026-11-23": 3})
    assert c.total == 8  # a shrinking bucket never decreases the total
    c.update({"2026-11-22": 15, "2026-11-23": 3})
    assert c.total == 8  # ... and growing back to the old high is not counted twice
    c.update({"2026-11-19": 99, "2026-11-23": 3})
    assert c.total == 8  # a day from before we started watching is history, not consumption


def test_counter_bounded_memory() -> None:
    c = ConsumedCounter()
    c.update({"2020-01-01": 0})
    for i in range(500):
        day = f"2021-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}-{i}"
        c.update({day: 1})
    assert len(c.seen) <= 400


def test_store_and_exposition() -> None:
    clock = Clock()
    store = Store(clock)
    cfg = config(
        """
accounts:
  - {name: g, provider: theirstack, api_key: k1, low_credit_threshold: {api: 100}, labels: {team: t}}
  - {name: s, provider: fullenrich, api_key: k2, max_staleness: 1h}
"""
    )
    store.set_accounts(cfg.accounts)
    assert not store.readiness.polled
    cache = ExpositionCache(store, clock=clock)
    store.record_success(
        "g",
        "balance",
        Reading(
            pools={
                "api": PoolValues(remaining=700, used=300),
                "ui": PoolValues(remaining=5, used=1),
            },
            expiry_timestamp=clock.t + 86400 * 3,
        ),
        0.25,
    )
    store.record_success(
        "g",
        "consumption",
        Reading(
            consumption={"api": {"1d": 10, "7d": 70, "30d": 300}},
            daily_consumption={"api": {"2026-11-22": 10}},
        ),
        0.1,
    )
    store.record_success(
        "s", "balance", Reading(pools={"workspace": PoolValues(remaining=12.5)}), 0.1
    )
    assert store.readiness.polled
    cache.render()
    s = samples(cache)
    g = (("account", "g"), ("pool", "api"), ("provider", "theirstack"), ("team", "t"))
    assert s[("credits_remaining", g)] == 700
    assert s[("credits_used", g)] == 300
    assert s[("credits_low_threshold", g)] == 100
    assert s[("credits_runway_seconds", g)] == 70 * 86400
    assert s[("credits_consumed_total", g)] == 0
    assert s[("credits_consumption", tuple(sorted((*g, ("window", "7d")))))] == 70
    assert not any(name == "credits_limit" for name, _ in s)  # never published as 0
    fe = (("account", "s"), ("pool", "workspace"), ("provider", "fullenrich"), ("team", ""))
    assert s[("credits_remaining", fe)] == 12.5

    # A failure keeps the values and flips credits_up; errors are counted by reason.
    store.record_failure("s", "balance", PollError(Reason.AUTH, "HTTP 401"), 0.1)
    clock.t += 60
    cache.render()
    s = samples(cache)
    ep = (("account", "s"), ("api_endpoint", "balance"), ("provider", "fullenrich"), ("team", ""))
    assert s[("credits_remaining", fe)] == 12.5
    assert s[("credits_up", ep)] == 0
    assert s[("credits_polls_total", ep)] == 2
    assert s[("credits_poll_errors_total", tuple(sorted((*ep, ("reason", "auth")))))] == 1

    # After max_staleness without success, value series go, health series stay.
    clock.t += 3600
    cache.render()
    s = samples(cache)
    assert ("credits_remaining", fe) not in s
    assert s[("credits_up", ep)] == 0
    assert ("credits_last_success_timestamp_seconds", ep) in s


def test_set_accounts_keeps_unchanged_state() -> None:
    store = Store(Clock())
    store.set_accounts(config("accounts: [{name: a, provider: fullenrich, api_key: k}]").accounts)
    store.record_success("a", "balance", Reading(pools={"workspace": PoolValues(remaining=1)}), 0.1)
    before = store.accounts["a"]
    applied = store.set_accounts(
        config(
            "accounts: [{name: a, provider: fullenrich, api_key: k}, {name: b, provider: fullenrich, api_key: k2}]"
        ).accounts
    )
    assert (applied.started, applied.removed, applied.reconfigured) == (["b"], [], {})
    assert store.accounts["a"] is before
    applied = store.set_accounts(
        config("accounts: [{name: a, provider: fullenrich, api_key: k, interval: 1m}]").accounts
    )
    assert (applied.started, applied.removed, applied.reconfigured) == (
        [],
        ["b"],
        {"a": {"balance": 300}},
    )
    assert store.accounts["a"].account.effective_interval == 60
    assert store.accounts["a"].endpoints is before.endpoints
    applied = store.set_accounts(
        config(
            "accounts: [{name: a, provider: fullenrich, api_key: k, base_url: 'http://x.example'}]"
        ).accounts
    )
    assert (applied.started, applied.removed) == (["a"], ["a"])
    assert store.accounts["a"].endpoints["balance"].reading is None


def test_reload_keeps_state_when_key_or_schedule_change() -> None:
    """Issue 11.11: a rotated key, a new interval, timeout, threshold or labels keep the last
    values, credits_consumed_total, the history and the error counters."""
    clock = Clock()
    store = Store(clock)
    text = "accounts: [{name: a, provider: theirstack, api_key: old-key}]"
    store.set_accounts(config(text).accounts)
    reading = Reading(
        pools={"api": PoolValues(remaining=900, used=100)},
        daily_consumption={"api": {"2026-11-21": 5.0, "2026-11-22": 10.0}},
    )
    store.record_success("a", "balance", reading, 0.1)
    store.record_success(
        "a",
        "consumption",
        dataclasses.replace(reading, daily_consumption={"api": {"2026-11-22": 14.0}}),
        0.1,
    )
    store.record_failure("a", "balance", PollError(Reason.TIMEOUT, "slow"), 0.1)
    assert store.accounts["a"].counters["api"].total == 4
    rotated = (
        "accounts: [{name: a, provider: theirstack, api_key: new-key, interval: 1h, timeout: 3s,"
        " low_credit_threshold: 50, labels: {team: growth}}]"
    )
    feed = store.feed()
    feed.take()
    applied = store.set_accounts(config(rotated).accounts)
    assert list(applied.reconfigured) == ["a"] and not applied.started and not applied.removed
    state = store.accounts["a"]
    assert state.account.secret == "new-key"
    assert state.provider.account is state.account
    assert state.pools(clock()) == {"api": PoolValues(remaining=900, used=100)}
    assert state.counters["api"].total == 4
    assert list(state.history["api"])[-1] == (clock(), 900.0)
    assert state.endpoints["balance"].errors_total == {Reason.TIMEOUT: 1}
    assert state.endpoints["balance"].polls_total == 2
    assert "a" in feed.take()[0]  # the renderer re-renders it (labels may have changed)
    # The new key is refused: credits_up 0 beside the last good values.
    store.record_failure("a", "balance", PollError(Reason.AUTH, "HTTP 401"), 0.1)
    assert state.pools(clock()) == {"api": PoolValues(remaining=900, used=100)}
    assert state.endpoints["balance"].up is False


def test_record_for_removed_account_is_ignored() -> None:
    store = Store(Clock())
    store.record_success("ghost", "balance", Reading(), 0.1)
    store.record_failure("ghost", "balance", PollError(Reason.TIMEOUT, "x"), 0.1)
    assert store.accounts == {}


def test_history_bounded() -> None:
    clock = Clock()
    store = Store(clock)
    store.set_accounts(config("accounts: [{name: a, provider: fullenrich, api_key: k}]").accounts)
    for i in range(5000):
        clock.t += 30
        store.record_success(
            "a", "balance", Reading(pools={"workspace": PoolValues(remaining=i)}), 0.1
        )
    points = store.accounts["a"].history["workspace"]
    assert len(points) <= 289
    assert clock.t - points[0][0] <= 86400
    assert points[-1][1] == 4999


async def test_render_failure_does_not_stop_the_render_loop() -> None:
    import asyncio

    store = Store(Clock())
    store.set_accounts(config("accounts: [{name: a, provider: fullenrich, api_key: k}]").accounts)
    cache = ExpositionCache(store, min_interval=0.01, clock=store.clock)
    real = cache.renderer.render_async
    failures: list[str] = []

    async def flaky() -> Exposition:
        if not failures:
            failures.append("render bug")
            raise RuntimeError("render bug")
        return await real()

    cache.renderer.render_async = flaky  # type: ignore[method-assign]  # a bug on the first render
    task = asyncio.create_task(cache.run())
    try:
        store.record_success(
            "a", "balance", Reading(pools={"workspace": PoolValues(remaining=7)}), 0.1
        )
        for _ in range(200):
            await asyncio.sleep(0.01)
            if b'credits_remaining{account="a"' in b"".join(cache.current.text_parts):
                break
        assert failures, "the first render should have failed"
        assert b'credits_remaining{account="a"' in b"".join(cache.current.text_parts)
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_failed_render_leaves_its_changes_to_the_next() -> None:
    """A render that fails after taking the store's changes (here while writing the accounts'
    lines) puts them back: the next render has them although nothing changed since."""
    store = Store(Clock())
    store.set_accounts(
        config(
            "accounts: [{name: a, provider: fullenrich, api_key: k},"
            " {name: b, provider: fullenrich, api_key: k2}]"
        ).accounts
    )
    for name in ("a", "b"):
        store.record_success(name, "balance", Reading(pools={"workspace": PoolValues(1)}), 0.1)
    cache = ExpositionCache(store, clock=store.clock)
    renderer = cache.renderer
    real = renderer._render_accounts
    failed: list[list[str]] = []

    def failing_once(names: list[str], now: float) -> None:
        if not failed:
            failed.append(list(names))
            raise RuntimeError("render bug")
        real(names, now)

    renderer._render_accounts = failing_once  # type: ignore[method-assign]
    store.record_success("b", "balance", Reading(pools={"workspace": PoolValues(77)}), 0.1)
    with pytest.raises(RuntimeError, match="render bug"):
        await cache.refresh()
    assert failed == [["b"]]
    await cache.refresh()
    assert b'credits_remaining{account="b",pool="workspace",provider="fullenrich"} 77.0' in (
        b"".join(cache.current.text_parts)
    )


async def test_a_failed_plan_leaves_its_changes_to_the_next() -> None:
    """A bug while planning a render (after the changes were taken) puts them back too."""
    store = Store(Clock())
    store.set_accounts(config("accounts: [{name: a, provider: fullenrich, api_key: k}]").accounts)
    store.record_success("a", "balance", Reading(pools={"workspace": PoolValues(1)}), 0.1)
    cache = ExpositionCache(store, clock=store.clock)
    renderer = cache.renderer
    real = renderer._plan_taken
    failed: list[bool] = []

    def failing_once(now: float, work: _Work, dirty: set[str], other: bool) -> _Work:
        if not failed:
            failed.append(True)
            raise RuntimeError("plan bug")
        return real(now, work, dirty, other)

    renderer._plan_taken = failing_once  # type: ignore[method-assign]
    store.record_success("a", "balance", Reading(pools={"workspace": PoolValues(55)}), 0.1)
    with pytest.raises(RuntimeError, match="plan bug"):
        await cache.refresh()
    await cache.refresh()
    assert b'credits_remaining{account="a",pool="workspace",provider="fullenrich"} 55.0' in (
        b"".join(cache.current.text_parts)
    )


def test_consumption_stands_without_the_balance() -> None:
    """Issue 11.6: TheirStack's consumption windows are the consumption endpoint's own values:
    they are published while the balance endpoint fails (and has never answered)."""
    clock = Clock()
    store = Store(clock)
    store.set_accounts(config("accounts: [{name: g, provider: theirstack, api_key: k}]").accounts)
    cache = ExpositionCache(store, clock=clock)
    store.record_failure("g", "balance", PollError(Reason.SERVER_ERROR, "HTTP 503"), 0.1)
    store.record_success(
        "g",
        "consumption",
        Reading(
            consumption={"api": {"1d": 7, "7d": 70, "30d": 300}, "ui": {"1d": 0, "7d": 1}},
            daily_consumption={"api": {"2026-11-22": 7}, "ui": {"2026-11-22": 0}},
        ),
        0.1,
    )
    cache.render()
    s = samples(cache)
    api = (("account", "g"), ("pool", "api"), ("provider", "theirstack"))
    assert s[("credits_consumption", (*api, ("window", "7d")))] == 70
    assert s[("credits_consumed_total", api)] == 0
    assert ("credits_remaining", api) not in s
    bal = (("account", "g"), ("api_endpoint", "balance"), ("provider", "theirstack"))
    assert s[("credits_up", bal)] == 0
    # The reference renderer says the same.
    names = {m.name for m in StoreCollector(store, clock).collect() for _ in m.samples}
    assert "credits_consumption" in names
