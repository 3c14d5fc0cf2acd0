"""The simulated provider APIs in a process of their own, seeded with N bench accounts.

    python -m bench.simserver --accounts 1000 --latency 0.1 --prefix b1

prints the base URL on stdout once it listens. Besides the simulator's own ``/_sim/`` control
API it serves ``GET /_bench/stats`` (provider calls: total, by key, first arrival and last
completion times, most requests in flight at once) and ``POST /_bench/reset``.

Account ``i`` has the key ``<prefix>-<i>`` and provider ``PROVIDERS[i % 3]`` (or the one given
with ``--provider``); :func:`account_entry` writes the matching exporter config entry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from exporter.simulator import Simulator

PROVIDERS = ("theirstack", "windsurf", "fullenrich")


def provider_of(i: int, only: str | None = None) -> str:
    return only or PROVIDERS[i % 3]


def account_entry(
    i: int, prefix: str, base_urls: dict[str, str], only: str | None = None
) -> dict[str, Any]:
    """The exporter config entry for bench account ``i``."""
    provider = provider_of(i, only)
    entry: dict[str, Any] = {
        "name": f"{prefix}-{i:05d}",
        "provider": provider,
        "api_key": f"{prefix}-{i}",
        "base_url": base_urls[provider],
    }
    if provider == "theirstack":
        entry["low_credit_threshold"] = {"api": 1000, "ui": 50}
        entry["consumption"] = {"lookback_days": 7}
    elif provider == "windsurf":
        entry["prompt_usage"] = True
        entry["low_credit_threshold"] = {"prompt": 500, "add_on": 100}
    else:
        entry["low_credit_threshold"] = 500
    return entry


def seed(sim: Simulator, n: int, prefix: str, latency: float, only: str | None = None) -> None:
    rng = random.Random(n)
    now = sim.now()
    today = datetime.fromtimestamp(now, UTC).date()
    for i in range(n):
        provider = provider_of(i, only)
        fields: dict[str, Any] = {"latency": latency}
        if provider == "theirstack":
            fields |= {
                "api_credits": rng.randint(1000, 90000),
                "ui_credits": rng.randint(10, 900),
                "used_api_credits": rng.randint(0, 5000),
                "used_ui_credits": rng.randint(0, 50),
                "earliest_expiration": (datetime.now(UTC) + timedelta(days=rng.randint(5, 90)))
                .replace(microsecond=0)
                .isoformat()
                .replace("+00:00", "Z"),
                "burn_api_per_day": rng.randint(100, 3000),
                "consumption_days": {
                    (today - timedelta(days=d)).isoformat(): {
                        "api": rng.randint(50, 3000),
                        "ui": rng.randint(0, 20),
                    }
                    for d in range(7)
                },
            }
        elif provider == "windsurf":
            fields |= {
                "num_seats": rng.randint(5, 50),
                "add_on_credits_available": 10000,
                "add_on_credits_used": rng.randint(0, 9000),
                "users": [
                    {"name": f"u{j}", "email": f"u{j}@example.com", "promptCreditsUsed": j * 40}
                    for j in range(3)
                ],
            }
        else:
            fields |= {"balance": rng.randint(0, 10000) + 0.5, "burn_per_day": 50.0}
        sim.add_account(provider, f"{prefix}-{i}", **fields)


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.by_key: Counter[str] = Counter()
        self.first_start: float | None = None
        self.last_end: float | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "keys": len(self.by_key),
            "max_calls_per_key": max(self.by_key.values(), default=0),
            "by_key": dict(self.by_key),
            "first_start": self.first_start,
            "last_end": self.last_end,
            "max_in_flight": self.max_in_flight,
        }


def _key_of(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth.removeprefix("Bearer ") if auth else "(body)"


def install(sim: Simulator, stats: Stats) -> None:
    Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(("/_sim", "/_bench")):
            return await handler(request)
        now = time.time()
        stats.calls += 1
        stats.by_key[_key_of(request)] += 1
        if stats.first_start is None:
            stats.first_start = now
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await handler(request)
        finally:
            stats.in_flight -= 1
            stats.last_end = time.time()

    async def get_stats(_request: web.Request) -> web.Response:
        return web.json_response(stats.as_json())

    async def reset(_request: web.Request) -> web.Response:
        stats.reset()
        return web.json_response({"ok": True})

    sim.app.middlewares.append(count)
    sim.app.router.add_get("/_bench/stats", get_stats)
    sim.app.router.add_post("/_bench/reset", reset)


def _deep_backlog() -> None:
    """Listen with a backlog like a provider's load balancer has, not aiohttp's 128: at
    start-up the exporter opens hundreds of connections at once, and SYNs dropped by a full
    backlog would be retried only after a second, measuring the simulator, not the exporter."""
    init = web.TCPSite.__init__

    def patched(self: web.TCPSite, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("backlog", 4096)
        init(self, *args, **kwargs)

    web.TCPSite.__init__ = patched  # type: ignore[method-assign]


async def serve(args: argparse.Namespace) -> None:
    _deep_backlog()
    sim = Simulator()
    seed(sim, args.accounts, args.prefix, args.latency, args.provider)
    install(sim, Stats())
    # The seeded accounts live as long as the process: keep the cycle collector off them, so
    # that the simulator (the providers' stand-in) does not pause in the middle of a run.
    gc.collect()
    gc.freeze()
    url = await sim.start("127.0.0.1", args.port)
    print(url, flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await sim.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.simserver")
    p.add_argument("--accounts", type=int, required=True)
    p.add_argument("--prefix", default="bench")
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--provider", choices=PROVIDERS, default=None)
    p.add_argument("--port", type=int, default=0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
