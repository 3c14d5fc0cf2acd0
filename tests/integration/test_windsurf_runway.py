"""Windsurf's burn rate and runway (issue 14) through the real daemon: a subprocess polling the
simulator's GetTeamCreditBalance, UserPageAnalytics and CascadeAnalytics over loopback, scraped
over HTTP, with its status page and /api/status."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exporter.simulator import SimulatorThread
from support import ExporterProcess, http_get, sample_values, value, wait_for
from support.leaks import find_secrets, wire_forms

KEY = "it-ws-cons-6e4b-key-0007"
WS = {"provider": "windsurf", "account": "engineering"}
WEEK = 7 * 86400


def day(offset: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def seed(sim: SimulatorThread) -> None:
    """Prompt pool 5,000 (1,500 used), add-on 2,000 (500 used): the team has 5,000 left and
    burnt 70 credits a day this week, 40 a day before."""
    history = {day(-n): 70.0 if n < 7 else 40.0 for n in range(40)}
    sim.add_account(
        "windsurf",
        KEY,
        prompt_credits_per_seat=500,
        num_seats=10,
        add_on_credits_available=2000,
        add_on_credits_used=500,
        billing_cycle_start=f"{day(-5)}T00:00:00Z",
        billing_cycle_end=f"{day(25)}T00:00:00Z",
        users=[
            {"name": "ada", "email": "ada@example.com", "promptCreditsUsed": 1000},
            {"name": "bob", "email": "bob@example.com", "promptCreditsUsed": 500},
        ],
        cascade_days=history,
        numbers_as_strings=True,
    )


def config(sim: SimulatorThread) -> dict[str, Any]:
    return {
        "defaults": {"interval": "1s", "timeout": "2s"},
        "accounts": [
            {
                "name": "engineering",
                "provider": "windsurf",
                "api_key": KEY,
                "base_url": sim.base_url("windsurf"),
                "prompt_usage": True,
                # The real API refreshes every 3 hours: 30 minutes by default; here, 1 s.
                "consumption": {"lookback_days": 30, "min_interval": "1s"},
            }
        ],
    }


def scrape(exp: ExporterProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return sample_values(exp.metrics())


def team(samples: dict[Any, float], metric: str, **labels: str) -> float | None:
    return value(samples, metric, **WS, pool="team", **labels)


def consumption_errors(exp: ExporterProcess, reason: str) -> float:
    labels = {**WS, "api_endpoint": "consumption", "reason": reason}
    return value(scrape(exp), "credits_poll_errors_total", **labels) or 0


def test_windsurf_burn_runway_and_counter(simulator: SimulatorThread, start_exporter: Any) -> None:
    seed(simulator)
    exp: ExporterProcess = start_exporter(config(simulator))
    exp.wait_ready()

    def started() -> dict[Any, float] | None:
        m = scrape(exp)
        return (
            m
            if team(m, "credits_remaining") and team(m, "credits_consumption", window="7d")
            else None
        )

    s = wait_for(started)

    # The team's credits as a whole: both pools' remaining, used and limit.
    assert team(s, "credits_remaining") == 3500 + 1500
    assert team(s, "credits_used") == 1500 + 500
    assert team(s, "credits_limit") == 5000 + 2000
    assert value(s, "credits_remaining", **WS, pool="prompt") == 3500  # as before
    assert value(s, "credits_remaining", **WS, pool="add_on") == 1500
    # Its consumption from CascadeAnalytics, per UTC day, today included.
    assert team(s, "credits_consumption", window="1d") == 70
    assert team(s, "credits_consumption", window="7d") == 490
    assert team(s, "credits_consumption", window="30d") == 7 * 70 + 23 * 40
    assert team(s, "credits_runway_seconds") == 5000 / 490 * WEEK
    assert team(s, "credits_consumed_total") == 0  # no jump at start-up
    for pool in ("prompt", "add_on"):  # no consumption of their own: nothing is made up
        assert value(s, "credits_consumption", **WS, pool=pool, window="7d") is None
        assert value(s, "credits_runway_seconds", **WS, pool=pool) is None
    for endpoint in ("balance", "user_analytics", "consumption"):
        assert value(s, "credits_up", **WS, api_endpoint=endpoint) == 1

    # The status page and /api/status show the burn and the runway like TheirStack's.
    status = json.loads(http_get(f"{exp.url}/api/status")[1])
    (account,) = status["accounts"]
    pool = account["pools"]["team"]
    assert (pool["remaining"], pool["consumption_7d"], pool["burn_per_day"]) == (5000, 490, 70)
    assert pool["runway_source"] == "consumption"
    assert pool["runway_days"] == pytest.approx(5000 / 70)
    assert account["notes"] == {}
    page = http_get(f"{exp.url}/")[1].decode()
    assert "at 70 credits/day (7-day average)" in page
    assert ">71 days</td>" in page  # 5,000 / 70 a day

    # Upstream catches up on today (its data lags up to 3 hours): the growth counts once.
    simulator.update(KEY, cascade_days={day(): 75.5})
    wait_for(lambda: team(scrape(exp), "credits_consumed_total") == 5.5)
    polls = value(scrape(exp), "credits_polls_total", **WS, api_endpoint="consumption") or 0
    wait_for(
        lambda: (
            (value(scrape(exp), "credits_polls_total", **WS, api_endpoint="consumption") or 0)
            >= polls + 3
        )
    )
    good = scrape(exp)
    assert team(good, "credits_consumed_total") == 5.5  # the same answers: nothing more
    assert team(good, "credits_consumption", window="7d") == 495.5

    # A bad answer is counted with its reason; the last good values stay.
    broken = {
        "queryResults": [{"cascadeRuns": {"cascadeRuns": [{"day": day(), "promptsUsed": None}]}}]
    }
    simulator.update(KEY, paths_fail={"/CascadeAnalytics": {"status": 200, "body": broken}})
    wait_for(lambda: consumption_errors(exp, "bad_response") >= 2)
    s = scrape(exp)
    assert value(s, "credits_up", **WS, api_endpoint="consumption") == 0
    assert value(s, "credits_up", **WS, api_endpoint="balance") == 1
    for metric, labels in (
        ("credits_consumption", {"window": "7d"}),
        ("credits_consumed_total", {}),
        ("credits_runway_seconds", {}),
        ("credits_remaining", {}),
    ):
        assert team(s, metric, **labels) == team(good, metric, **labels), metric
    # Rate limited, and an error in a 200 answer that echoes the key: counted, key kept out.
    simulator.update(KEY, paths_fail={"/CascadeAnalytics": {"status": 429, "retry_after": "1"}})
    wait_for(lambda: consumption_errors(exp, "rate_limited") >= 1)
    echo = {"error": f"Invalid service key {KEY}"}
    simulator.update(KEY, paths_fail={"/CascadeAnalytics": {"status": 200, "body": echo}})
    wait_for(lambda: consumption_errors(exp, "auth") >= 1)
    assert team(scrape(exp), "credits_consumed_total") == 5.5
    pages = [
        exp.metrics(),
        http_get(f"{exp.url}/")[1].decode(),
        http_get(f"{exp.url}/api/status")[1].decode(),
    ]

    # Recovery: a new day's data counts, the earlier ones are not counted again.
    simulator.update(KEY, paths_fail={}, cascade_days={day(): 80.0})
    wait_for(lambda: team(scrape(exp), "credits_consumed_total") == 10)
    time.sleep(2.5)
    s = scrape(exp)
    assert team(s, "credits_consumed_total") == 10
    assert value(s, "credits_up", **WS, api_endpoint="consumption") == 1

    assert exp.stop() == 0
    for text in [*pages, exp.logs()]:
        assert find_secrets(text, wire_forms(KEY)) == []
