"""Polling loops against a real loopback server: timing, backoff, Retry-After, isolation.

The loops' time is virtual (support.VirtualTime): a test fires their timers and asserts the
delays they asked for, so what is proven does not depend on how busy the machine is."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from exporter.config import parse_config
from exporter.model import Reason
from exporter.scheduler import next_delay
from support.polling import Polling, polling, until
from support.polling import fullenrich_accounts as accounts


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


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Polling]:
    async with polling(monkeypatch) as rig:
        yield rig


def around(interval: float) -> tuple[float, float]:
    """The bounds of ``interval`` with the loops' jitter (+-10%)."""
    return 0.9 * interval, 1.1 * interval


async def test_first_poll_immediate_then_interval(rig: Polling) -> None:
    t0 = rig.time.now
    sched = await rig.start(accounts(rig.base, [("a", "10s")]))
    await rig.time.settle(sched)
    calls = rig.upstream.calls["a-key"]
    assert calls == [t0]  # at once: no timer had fired
    loop = sched.tasks[("a", "balance")]
    await rig.time.poll_again(sched, loop, 3)
    delays = rig.time.delays[("a", "balance")]
    assert len(calls) == 4 and len(delays) == 4
    low, high = around(10)
    assert all(low <= d <= high for d in delays), delays
    assert [b - a for a, b in itertools.pairwise(calls)] == pytest.approx(delays[:3])


async def test_failing_account_does_not_delay_others(rig: Polling) -> None:
    rig.upstream.mode["bad-key"] = "hang"
    sched = await rig.start(
        accounts(rig.base, [("good", "0.3s"), ("bad", "0.3s")], ", timeout: 3s")
    )
    good, bad = sched.tasks[("good", "balance")], sched.tasks[("bad", "balance")]
    for _ in range(4):
        await until(lambda: rig.time.pending(good))
        rig.time.fire(good)
    await until(lambda: rig.time.pending(good))
    assert len(rig.upstream.calls["good-key"]) == 5
    # Five polls of the good account went by while the bad one's first is still waiting.
    assert bad.task is not None and rig.store.accounts["bad"].endpoints["balance"].polls_total == 0
    await until(lambda: rig.time.pending(bad))
    ep = rig.store.accounts["bad"].endpoints["balance"]
    assert ep.up is False and ep.errors_total == {Reason.TIMEOUT: 1}
    assert rig.store.accounts["good"].endpoints["balance"].up is True


async def test_backoff_then_recovery_resets(rig: Polling) -> None:
    rig.upstream.mode["a-key"] = "500"
    # Interval 64 s: backoff starts at 2 s (a 32nd), doubles, and never exceeds the interval.
    sched = await rig.start(accounts(rig.base, [("a", "64s")]))
    loop = sched.tasks[("a", "balance")]
    await rig.time.settle(sched)
    await rig.time.poll_again(sched, loop, 2)
    ep = rig.store.accounts["a"].endpoints["balance"]
    assert ep.up is False and ep.errors_total == {Reason.SERVER_ERROR: 3}
    rig.upstream.mode["a-key"] = "ok"
    await rig.time.poll_again(sched, loop)
    assert ep.up is True and ep.consecutive_failures == 0
    rig.upstream.mode["a-key"] = "500"  # failing again: the backoff starts over
    await rig.time.poll_again(sched, loop)
    bounds = [around(2), around(4), around(8), around(64), around(2)]
    delays = rig.time.delays[("a", "balance")]
    assert len(delays) == len(bounds)
    assert all(low <= d <= high for d, (low, high) in zip(delays, bounds, strict=True)), delays


async def test_retry_after_obeyed(rig: Polling) -> None:
    rig.upstream.mode["a-key"] = "429"
    sched = await rig.start(accounts(rig.base, [("a", "0.3s")]))
    await rig.time.settle(sched)
    # Retry-After: 2 beats the 0.3 s interval (and its backoff).
    assert rig.time.delays[("a", "balance")] == [2.0]
    assert rig.store.accounts["a"].endpoints["balance"].errors_total == {Reason.RATE_LIMITED: 1}


async def test_per_provider_concurrency_cap(rig: Polling) -> None:
    for i in range(10):
        rig.upstream.mode[f"a{i}-key"] = "slow"
    text = "providers: {fullenrich: {max_concurrency: 3}}\n" + accounts(
        rig.base, [(f"a{i}", "10s") for i in range(10)]
    )
    sched = await rig.start(text)
    await rig.time.settle(sched)  # every first poll done, no timer fired
    assert rig.upstream.max_in_flight == 3
    assert sum(len(v) for v in rig.upstream.calls.values()) == 10


async def test_bad_response_never_ends_loop(rig: Polling) -> None:
    rig.upstream.mode["a-key"] = "garbage"
    sched = await rig.start(accounts(rig.base, [("a", "0.5s")]))
    loop = sched.tasks[("a", "balance")]
    await rig.time.settle(sched)
    await rig.time.poll_again(sched, loop, 2)
    ep = rig.store.accounts["a"].endpoints["balance"]
    assert ep.errors_total == {Reason.BAD_RESPONSE: 3}
    assert rig.time.pending(loop) is not None  # and the next poll is scheduled


async def test_reload_keeps_unchanged_schedule(rig: Polling) -> None:
    sched = await rig.start(accounts(rig.base, [("a", "5s"), ("b", "5s")]))
    await rig.time.settle(sched)
    task_a = sched.tasks[("a", "balance")]
    timer_a = rig.time.pending(task_a)
    state_a = rig.store.accounts["a"]
    await sched.apply(parse_config(accounts(rig.base, [("a", "5s"), ("c", "5s")]), env={}))
    await rig.time.settle(sched)
    assert sched.tasks[("a", "balance")] is task_a
    assert rig.time.pending(task_a) is timer_a  # its next poll stays when it was
    assert rig.store.accounts["a"] is state_a
    assert set(rig.store.accounts) == {"a", "c"}
    assert ("b", "balance") not in sched.tasks
    assert len(rig.upstream.calls["a-key"]) == 1  # not re-polled by the reload
    assert len(rig.upstream.calls["c-key"]) == 1  # the added account starts at once


async def test_reload_applies_key_and_interval_in_place(rig: Polling) -> None:
    """Issue 11.11: a rotated key is used from the next poll, a shorter interval at once, and the
    account keeps its loop and state."""

    def config(key: str, interval: str) -> str:
        return (
            f"accounts: [{{name: a, provider: fullenrich, api_key: {key}, "
            f"base_url: '{rig.base}', interval: {interval}, rate_limit: unlimited}}]"
        )

    sched = await rig.start(config("old-key", "1h"))
    await rig.time.settle(sched)
    loop = sched.tasks[("a", "balance")]
    hourly = rig.time.pending(loop)
    assert hourly is not None
    await sched.apply(parse_config(config("new-key", "0.3s"), env={}))
    state = rig.store.accounts["a"]
    assert sched.tasks[("a", "balance")] is loop and loop.state is state
    # The shorter interval does not wait for the hour: a sooner timer replaces it.
    assert hourly.cancelled()
    low, high = around(0.3)
    assert low <= rig.time.delays[("a", "balance")][-1] <= high
    await rig.time.poll_again(sched, loop, 2)
    assert len(rig.upstream.calls["old-key"]) == 1
    assert len(rig.upstream.calls["new-key"]) == 2
    assert state.endpoints["balance"].polls_total == 3
    # A longer interval applies from the next poll on: the pending timer stays, then hourly.
    pending = rig.time.pending(loop)
    await sched.apply(parse_config(config("new-key", "1h"), env={}))
    assert rig.time.pending(loop) is pending
    await rig.time.poll_again(sched, loop)
    low, high = around(3600)
    assert low <= rig.time.delays[("a", "balance")][-1] <= high


async def test_reload_with_a_shorter_interval_keeps_retry_after(rig: Polling) -> None:
    rig.upstream.mode["a-key"] = "429"  # Retry-After: 2
    sched = await rig.start(accounts(rig.base, [("a", "1h")]))
    await rig.time.settle(sched)
    loop = sched.tasks[("a", "balance")]
    timer = rig.time.pending(loop)
    low, high = around(3600 / 32)  # the first backoff of an hourly loop (beyond Retry-After)
    assert timer is not None and low <= rig.time.delays[("a", "balance")][0] <= high
    await sched.apply(parse_config(accounts(rig.base, [("a", "0.2s")]), env={}))
    # The provider asked to wait (Retry-After): the reload does not hurry it.
    assert rig.time.pending(loop) is timer and not timer.cancelled()


async def test_cancellation_is_clean(rig: Polling) -> None:
    rig.upstream.mode["a-key"] = "hang"
    sched = await rig.start(accounts(rig.base, [("a", "1s")]))
    await until(lambda: rig.upstream.in_flight)
    task = sched.tasks[("a", "balance")].task
    assert task is not None
    await sched.stop()
    assert task.cancelled()  # not left to run into its timeout
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
    rig: Polling, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logging "account down" fails (and every later line of the loop): the loop polls on."""
    import exporter.scheduler

    rig.upstream.mode["a-key"] = "500"
    monkeypatch.setattr(exporter.scheduler, "log", _UnwritableLog())
    sched = await rig.start(accounts(rig.base, [("a", "0.3s")]))
    loop = sched.tasks[("a", "balance")]
    await rig.time.settle(sched)
    await rig.time.poll_again(sched, loop, 2)
    assert len(rig.upstream.calls["a-key"]) == 3
    assert rig.store.accounts["a"].endpoints["balance"].polls_total == 3
    assert rig.time.pending(loop) is not None
