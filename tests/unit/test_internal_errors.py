"""A crash in the exporter's own code fails the poll with reason ``internal``, never the
provider's ``bad_response``: counted in ``credits_poll_errors_total{reason="internal"}`` and
logged once with its traceback while it lasts, not on every poll."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from exporter.config import parse_config
from exporter.http import HttpClient
from exporter.metrics import ExpositionCache
from exporter.model import Reading
from exporter.providers.fullenrich import FullEnrich
from exporter.scheduler import Scheduler
from exporter.simulator import SimulatorThread
from exporter.store import Store


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with SimulatorThread() as sim:
        sim.add_account("fullenrich", "k-1", balance=12.5)
        yield sim.base_url("fullenrich")


def poll_errors(text: str) -> dict[str, float]:
    """reason -> credits_poll_errors_total of the one endpoint."""
    (family,) = (f for f in text_string_to_metric_families(text) if f.name == "credits_poll_errors")
    return {s.labels["reason"]: s.value for s in family.samples if s.name.endswith("_total")}


async def test_a_bug_is_internal_counted_and_logged_once(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashes = 0
    crashed_four_times = asyncio.Event()

    def broken(data: Any) -> Reading:  # a bug in our parser, on a good answer
        nonlocal crashes
        crashes += 1
        if crashes == 4:
            crashed_four_times.set()
        raise KeyError("workspace")

    monkeypatch.setattr(FullEnrich, "parse_balance", staticmethod(broken))
    config = parse_config(
        f"accounts: [{{name: a, provider: fullenrich, api_key: k-1, base_url: '{base_url}', "
        "interval: 100ms, rate_limit: unlimited}]",
        env={},
    )
    store = Store()
    async with aiohttp.ClientSession() as session:
        scheduler = Scheduler(store, HttpClient(session), config)
        with capture_logs() as logs:
            await scheduler.start()
            try:
                async with asyncio.timeout(20):
                    await crashed_four_times.wait()
            finally:
                await scheduler.stop()
    ep = store.accounts["a"].endpoints["balance"]
    assert {r.value: n for r, n in ep.errors_total.items()} == {"internal": ep.polls_total}
    assert ep.polls_total >= 4
    assert ep.last_error is not None and ep.last_error.message == "internal error (KeyError)"

    # Logged once with the traceback, however often it crashed; the account is down once.
    crashed = [e for e in logs if e["event"] == "poll crashed"]
    assert len(crashed) == 1, crashed
    assert crashed[0]["log_level"] == "error" and isinstance(crashed[0]["exc_info"], KeyError)
    down = [e for e in logs if e["event"] in ("account down", "account still down")]
    assert [(e["event"], e["reason"]) for e in down] == [("account down", "internal")]

    cache = ExpositionCache(store)
    await cache.refresh()
    errors = poll_errors(cache.current.text.decode())
    assert errors == {"internal": ep.polls_total}
