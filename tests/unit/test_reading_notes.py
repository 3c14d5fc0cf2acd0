"""Why a value is left out is said once in the log and shown on the status page: Windsurf's
analytics lagging a billing cycle behind the balance right after a reset (issue 11.3)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime

import aiohttp
from structlog.testing import capture_logs

from exporter.config import parse_config
from exporter.http import HttpClient
from exporter.model import PoolValues
from exporter.scheduler import Scheduler
from exporter.simulator import Simulator
from exporter.statuscache import StatusCache
from exporter.statusquery import Query
from exporter.store import Store


def render_page(store: Store) -> bytes:
    """The status page as it would be rendered now."""
    return StatusCache(store).render().page_html(Query())


def render_json(store: Store) -> bytes:
    return b"".join(StatusCache(store).render().api_parts(Query(per_page=None)))


KEY = "ws-notes-key-0123456789"


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_cycle_reset_withholds_usage_notes_it_once_and_shows_it() -> None:
    start = datetime(2026, 11, 30, 22, tzinfo=UTC).timestamp()
    sim = Simulator(clock=lambda: start)
    sim.add_account(
        "windsurf",
        KEY,
        prompt_credits_per_seat=100,
        num_seats=10,
        billing_cycle_start="2026-11-01T00:00:00Z",
        billing_cycle_end="2026-12-01T00:00:00Z",
        users=[{"name": "Ada", "email": "ada@example.com", "promptCreditsUsed": 700}],
        analytics_lag_seconds=3 * 3600,
    )
    await sim.start()
    store = Store(clock=sim.now)
    text = (
        f"accounts: [{{name: eng, provider: windsurf, api_key: {KEY}, prompt_usage: true, "
        f"interval: 1s, low_credit_threshold: {{prompt: 500}}, "
        f'base_url: "{sim.base_url("windsurf")}"}}]'
    )
    try:
        async with aiohttp.ClientSession() as session:
            sched = Scheduler(store, HttpClient(session), parse_config(text, env={}))
            with capture_logs() as logs:
                try:
                    await sched.start()
                    await scenario(sim, store)
                finally:
                    await sched.stop()
        notes = [e for e in logs if e["event"] == "reading note"]
        cleared = [e for e in logs if e["event"] == "reading note cleared"]
        assert len(notes) == 1, logs
        assert notes[0]["account"] == "eng" and notes[0]["about"] == "prompt"
        assert "2026-12-01T00:00:00Z to 2027-01-01T00:00:00Z" in notes[0]["note"]
        assert len(cleared) == 1 and cleared[0]["about"] == "prompt"
        assert "prompt usage" not in render_page(store).decode()
    finally:
        await sim.stop()


async def scenario(sim: Simulator, store: Store) -> None:
    state = store.accounts["eng"]

    def prompt() -> PoolValues:
        return state.pools(store.clock()).get("prompt", PoolValues())

    await until(lambda: prompt().remaining is not None)
    assert prompt() == PoolValues(limit=1000, used=700, remaining=300)

    # The cycle resets at midnight; analytics reports the old one for 3 hours.
    sim.advance(3 * 3600)
    await until(lambda: prompt() == PoolValues(limit=1000))
    await asyncio.sleep(2.5)  # a few more polls of each endpoint: no more log lines
    page = render_page(store).decode()
    assert "prompt usage withheld until analytics reaches" in page
    status = json.loads(render_json(store))
    (account,) = status["accounts"]
    assert "2026-12-01T00:00:00Z to 2027-01-01T00:00:00Z" in account["notes"]["prompt"]
    assert account["pools"]["prompt"]["remaining"] is None
    assert account["severity"] == "ok"  # no false low-credit state

    # Analytics catches up: the new cycle's usage (0), and the note goes.
    sim.advance(3 * 3600)
    await until(lambda: prompt() == PoolValues(limit=1000, used=0, remaining=1000))
    await asyncio.sleep(1.5)
