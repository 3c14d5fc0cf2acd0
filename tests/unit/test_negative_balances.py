"""Negative balances are real (overage, refunds): published as is, so CreditsExhausted fires
(issue 11.5). Implausible numbers are still refused."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from typing import Any

import aiohttp
import pytest

from exporter.catalogue import account_samples
from exporter.config import parse_config
from exporter.http import HttpClient
from exporter.model import PollError, PoolValues, Reason
from exporter.providers.fullenrich import FullEnrich
from exporter.providers.theirstack import TheirStack
from exporter.scheduler import poll_all_once
from exporter.simulator import Simulator
from exporter.statuscache import StatusCache
from exporter.statuspage import account_status
from exporter.statusquery import Query
from exporter.store import Store


class Clock:
    def __init__(self) -> None:
        self.t = 1_790_000_000.0

    def __call__(self) -> float:
        return self.t


async def test_negative_balances_through_the_simulator() -> None:
    sim = Simulator()
    sim.add_account(
        "theirstack", "ts-negative", api_credits=-20, ui_credits=3, used_api_credits=120
    )
    sim.add_account("fullenrich", "fe-negative", balance=-3.5)
    await sim.start()
    try:
        text = f"""
accounts:
  - {{name: t, provider: theirstack, api_key: ts-negative, base_url: "{sim.base_url("theirstack")}",
      consumption: {{enabled: false}}}}
  - {{name: f, provider: fullenrich, api_key: fe-negative, base_url: "{sim.base_url("fullenrich")}"}}
"""
        config = parse_config(text, env={})
        store = Store()
        async with aiohttp.ClientSession() as session:
            assert await poll_all_once(store, HttpClient(session), config) == []
        now = store.clock()
        assert store.accounts["t"].pools(now)["api"] == PoolValues(remaining=-20, used=120)
        assert store.accounts["f"].pools(now)["workspace"] == PoolValues(remaining=-3.5)
    finally:
        await sim.stop()


BALANCE = {"api_credits": 1, "ui_credits": 1, "used_api_credits": 1, "used_ui_credits": 1}


@pytest.mark.parametrize("wrong", [math.nan, math.inf, -math.inf, -1e16, "-20", None, True])
def test_implausible_balances_still_refused(wrong: Any) -> None:
    for parse, body in (
        (TheirStack.parse_balance, {**BALANCE, "api_credits": wrong}),
        (FullEnrich.parse_balance, {"balance": wrong}),
    ):
        with pytest.raises(PollError) as info:
            parse(body)
        assert info.value.reason is Reason.BAD_RESPONSE


async def test_a_pool_that_ran_out_has_a_runway_of_zero() -> None:
    """A negative balance with a burn gives remaining / burn < 0: published, that is a runway
    in the past ("2 days ago"). It ran out: credits_runway_seconds is 0, and the status page
    says exhausted, for the provider's own history (TheirStack) and for the fall of the
    balance (FullEnrich)."""
    sim = Simulator()
    days = {(date.today() - timedelta(days=n)).isoformat(): {"api": 10} for n in range(7)}
    sim.add_account(
        "theirstack", "ts-overdrawn", api_credits=-20, ui_credits=3, consumption_days=days
    )
    sim.add_account("fullenrich", "fe-overdrawn", balance=50)
    await sim.start()
    clock = Clock()
    try:
        text = f"""
accounts:
  - {{name: t, provider: theirstack, api_key: ts-overdrawn, base_url: "{sim.base_url("theirstack")}"}}
  - {{name: f, provider: fullenrich, api_key: fe-overdrawn, base_url: "{sim.base_url("fullenrich")}"}}
"""
        config = parse_config(text, env={})
        store = Store(clock=clock)
        async with aiohttp.ClientSession() as session:
            for balance in (50.0, 10.0, -30.0):  # falling past 0, an hour apart
                sim.update("fe-overdrawn", balance=balance)
                assert await poll_all_once(store, HttpClient(session), config) == []
                clock.t += 3600
    finally:
        await sim.stop()
    now = clock.t
    samples = {
        (family.name, labels): value
        for state in store.accounts.values()
        for family, labels, value in account_samples(state, now)
    }
    assert samples[("credits_runway_seconds", ("theirstack", "t", "api"))] == 0
    assert all(v >= 0 for (name, _), v in samples.items() if name == "credits_runway_seconds")
    ts = account_status(store.accounts["t"], now)
    fe = account_status(store.accounts["f"], now)
    api = next(p for p in ts.pools if p.pool == "api")
    (workspace,) = fe.pools
    assert (api.runway_source, api.runway_days) == ("consumption", 0.0)
    assert (workspace.runway_source, workspace.runway_days) == ("balance_history", 0.0)
    html = StatusCache(store).render().page_html(Query(per_page=None)).decode()
    rows = re.findall(r'<td class="num runway[^"]*" title="([^"]*)">([^<]*)', html)
    assert rows and ("nothing left: -30 credits remaining", "exhausted") in rows, rows
    assert "ago" not in "".join(text for _, text in rows)
