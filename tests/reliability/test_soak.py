"""Soak: the daemon in-process polls a simulator (its own process) for 30 s at 0.2 s
intervals while random faults come and go every quarter second, the config is reloaded every
few seconds (accounts removed, added, changed) and /metrics is scraped ten times a second.

Thousands of polls later, Python memory (tracemalloc) and the number of asyncio tasks are flat:
bounded by the same figures as after the warm-up, with a generous margin. Nothing crashed, every
kind of failure was seen, and stop() leaves nothing behind."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import yaml

from exporter.config import Config, parse_config
from exporter.daemon import Daemon
from exporter.log import configure

DURATION = 30.0
WARMUP = 8.0
INTERVAL = "200ms"
TIMEOUT = "300ms"
PER_PROVIDER = 6
#: Python memory may grow this much from the warm-up to the end. Flat measures ~0.1 MB of
#: noise on ~0.7 MB; the PollError tracebacks kept alive before they were detached grew
#: ~2.5 MB in 30 s.
MEMORY_MARGIN = 1536 * 1024
TASK_MARGIN = 12

FAULTS: list[dict[str, Any]] = [
    {"fail": {"status": s}} for s in (401, 402, 403, 404, 422, 500, 502, 503)
] + [
    {"fail": {"status": 429, "retry_after": "1"}},
    {"malformed": "html"},
    {"malformed": "invalid_json"},
    {"malformed": "wrong_shape"},
    {"malformed": "missing_field"},
    {"malformed": "string_number"},
    {"malformed": "null_field"},
    {"malformed": "negative"},
    {"malformed": "absurd"},
    {"malformed": "reset"},
    {"malformed": "trickle"},
    {"malformed": "huge_body"},
    {"latency": 1.0},
]
HEALTHY = {"fail": None, "malformed": None, "latency": 0.0}
SEEDS: dict[str, dict[str, Any]] = {
    "theirstack": {"api_credits": 1000, "ui_credits": 10, "burn_api_per_day": 86400.0},
    "windsurf": {"num_seats": 4, "add_on_credits_available": 500},
    "fullenrich": {"balance": 1000.0, "burn_per_day": 8640.0},
}


class LogCounter:
    """A log stream that keeps nothing but counts events (memory must not grow with logs)."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()

    def write(self, text: str) -> int:
        match = re.search(r'event=("[^"]*"|\S+)', text)
        if match:
            self.events[match.group(1).strip('"')] += 1
        return len(text)

    def flush(self) -> None:
        pass


@pytest.fixture
def sim_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.simulator", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


def keys() -> dict[str, str]:
    out = {}
    for provider in SEEDS:
        for i in range(PER_PROVIDER + 2):
            out[f"{provider}-{i}"] = f"sk_soak_{provider}_{i}_0123456789"
    return out


def config_text(sim: str, generation: int) -> str:
    """Even generations: accounts 0..N-1. Odd ones: account 0 dropped, account N added,
    account 1 changed (threshold), so every reload stops, starts and restarts loops."""
    accounts = []
    mounts = {
        "theirstack": "/theirstack",
        "windsurf": "/windsurf/api/v1",
        "fullenrich": "/fullenrich/api/v2",
    }
    for provider in SEEDS:
        indexes = range(PER_PROVIDER) if generation % 2 == 0 else range(1, PER_PROVIDER + 1)
        for i in indexes:
            account: dict[str, Any] = {
                "name": f"{provider}-{i}",
                "provider": provider,
                "api_key": keys()[f"{provider}-{i}"],
                "base_url": sim + mounts[provider],
            }
            if i == 1:
                account["low_credit_threshold"] = 10 + generation % 2
            accounts.append(account)
    return yaml.safe_dump(
        {
            "defaults": {"interval": INTERVAL, "timeout": TIMEOUT, "max_staleness": "1h"},
            # Polls as fast as the intervals say: the providers' default per-key rate limits
            # (TheirStack 4/s, FullEnrich 1/s) would pace these 200 ms loops down.
            "providers": {p: {"max_concurrency": 32, "rate_limit": "unlimited"} for p in SEEDS},
            "accounts": accounts,
        }
    )


async def test_soak(sim_url: str) -> None:
    rng = random.Random(5)
    async with aiohttp.ClientSession() as ctl:
        for name, key in keys().items():
            provider = name.split("-")[0]
            async with ctl.put(
                f"{sim_url}/_sim/accounts/{key}", json={"provider": provider, **SEEDS[provider]}
            ) as resp:
                assert resp.status == 200, await resp.text()

        generation = 0

        def load() -> Config:
            return parse_config(config_text(sim_url, generation), env={})

        logs = LogCounter()
        configure("info", "logfmt", stream=logs)  # type: ignore[arg-type]
        tracemalloc.start(1)
        daemon = Daemon(load(), config_loader=load, listen_address="127.0.0.1:0")
        try:
            await daemon.start()
            metrics_url = f"http://127.0.0.1:{daemon.bound_port}/metrics"
            stop = asyncio.Event()
            scrapes: list[int] = []

            async def chaos() -> None:
                names = list(keys().values())
                while not stop.is_set():
                    fields = rng.choice(FAULTS) if rng.random() < 0.6 else {}
                    async with ctl.patch(
                        f"{sim_url}/_sim/accounts/{rng.choice(names)}", json={**HEALTHY, **fields}
                    ) as resp:
                        assert resp.status == 200, await resp.text()
                    await asyncio.sleep(0.25)

            async def scraper() -> None:
                async with aiohttp.ClientSession() as web:
                    while not stop.is_set():
                        async with web.get(metrics_url) as resp:
                            await resp.read()
                            scrapes.append(resp.status)
                        await asyncio.sleep(0.1)

            async def reloader() -> None:
                nonlocal generation
                while not stop.is_set():
                    await asyncio.sleep(3)
                    generation += 1
                    assert await daemon.reload() == []

            helpers = [asyncio.create_task(f()) for f in (chaos, scraper, reloader)]
            samples: list[tuple[float, int, int, int]] = []
            started = time.monotonic()
            while time.monotonic() - started < DURATION:
                await asyncio.sleep(1)
                polls = sum(
                    ep.polls_total
                    for s in daemon.store.accounts.values()
                    for ep in s.endpoints.values()
                )
                samples.append(
                    (
                        time.monotonic() - started,
                        tracemalloc.get_traced_memory()[0],
                        len(asyncio.all_tasks()),
                        polls,
                    )
                )
                for task in helpers:
                    if task.done():
                        task.result()  # a helper failing fails the test
            stop.set()
            await asyncio.gather(*helpers)
            async with ctl.get(f"{sim_url}/_sim/calls") as resp:
                upstream_calls = (await resp.json())["total"]
            errors = Counter(
                reason.value
                for s in daemon.store.accounts.values()
                for ep in s.endpoints.values()
                for reason, n in ep.errors_total.items()
                for _ in range(n)
            )
        finally:
            await daemon.stop()
            tracemalloc.stop()
            configure()

    after = [s for s in samples if s[0] >= WARMUP]
    first, last = after[:5], after[-5:]
    memory_start = statistics.median(m for _, m, _, _ in first)
    memory_end = statistics.median(m for _, m, _, _ in last)
    memory_peak = max(m for _, m, _, _ in after)
    tasks_start = max(t for _, _, t, _ in first)
    tasks_peak = max(t for _, _, t, _ in after)
    report = (
        f"memory {memory_start / 1e6:.1f} -> {memory_end / 1e6:.1f} MB (peak "
        f"{memory_peak / 1e6:.1f}), tasks {tasks_start} -> {tasks_peak} peak, "
        f"{upstream_calls} upstream calls, "
        f"errors {dict(errors)}, scrapes {len(scrapes)}, events {dict(logs.events)}"
    )
    print(report)
    # Thousands of polls, every kind of failure among them, nothing crashed.
    assert upstream_calls >= 2000, report
    assert set(errors) >= {
        "auth",
        "payment_required",
        "rate_limited",
        "client_error",
        "server_error",
        "timeout",
        "connection",
        "bad_response",
    }, report
    assert logs.events["poll crashed"] == 0, report
    assert logs.events["config reloaded"] >= 5, report
    assert scrapes and set(scrapes) == {200}, report
    # Flat: the end is where the start was, and nothing in between ran away.
    assert memory_end - memory_start < MEMORY_MARGIN, report
    assert memory_peak - memory_start < 2 * MEMORY_MARGIN, report
    assert tasks_peak <= tasks_start + TASK_MARGIN, report
    # And stopping leaves nothing behind.
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
