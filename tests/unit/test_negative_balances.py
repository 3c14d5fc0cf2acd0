"""Negative balances are real (overage, refunds): published as is, so CreditsExhausted fires
(issue 11.5). Implausible numbers are still refused."""

from __future__ import annotations

import math
from typing import Any

import aiohttp
import pytest

from exporter.config import parse_config
from exporter.http import HttpClient
from exporter.model import PollError, PoolValues, Reason
from exporter.providers.fullenrich import FullEnrich
from exporter.providers.theirstack import TheirStack
from exporter.scheduler import poll_all_once
from exporter.simulator import Simulator
from exporter.store import Store


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
