"""Windsurf's consumption (issue 14): the opt-in ``consumption`` block, CascadeAnalytics'
``cascade_runs`` rows read into the ``team`` pool's daily history, the team's remaining for the
runway, the consumed counter, and the endpoint's own poll pacing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from exporter.config import parse_config
from exporter.configfile import ConfigError
from exporter.http import HttpClient
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.providers import create_provider
from exporter.providers.base import merge_pools
from exporter.providers.windsurf import (
    TEAM_NO_CYCLE_NOTE,
    TEAM_NO_PROMPT_USAGE_NOTE,
    Windsurf,
    WindsurfAccount,
    cascade_runs_query,
    classify,
)
from exporter.scheduler import Scheduler
from exporter.simulator import Simulator
from exporter.store import Store
from support import account_client
from support.leaks import find_secrets

NOW = datetime(2026, 1, 20, 15, 30, tzinfo=UTC)
JAN = {"billingCycleStart": "2026-01-01T00:00:00Z", "billingCycleEnd": "2026-02-01T00:00:00Z"}
FEB = {"billingCycleStart": "2026-02-01T00:00:00Z", "billingCycleEnd": "2026-03-01T00:00:00Z"}
KEY = "ws-consumption-secret-key-0123456789"


def account(options: str = "consumption: {}", **extra: str) -> WindsurfAccount:
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    text = f"accounts: [{{name: e, provider: windsurf, api_key: {KEY}, {options}{more}}}]"
    acct = parse_config(text, env={}).accounts[0]
    assert isinstance(acct, WindsurfAccount)
    return acct


def windsurf(options: str = "consumption: {}", **extra: str) -> Windsurf:
    p = create_provider(account(options, **extra))
    assert isinstance(p, Windsurf)
    return p


def runs(*rows: object) -> dict[str, Any]:
    return {"queryResults": [{"cascadeRuns": {"cascadeRuns": list(rows)}}]}


LEFT_OUT = object()


def row(day: Any, used: Any = LEFT_OUT) -> dict[str, Any]:
    out = {"day": day, "model": "GPT-4.1", "mode": "UNKNOWN", "cascadeId": "c1"}
    if used is not LEFT_OUT:
        out["promptsUsed"] = used
    return out


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    return info.value.errors


# --------------------------------------------------------------------------- the option


def test_off_unless_the_block_is_given() -> None:
    assert windsurf("prompt_usage: false").endpoints == ("balance",)
    assert windsurf().endpoints == ("balance", "consumption")
    assert windsurf("consumption: {enabled: false}").endpoints == ("balance",)
    both = windsurf("prompt_usage: true, consumption: {enabled: true, lookback_days: 30}")
    assert both.endpoints == ("balance", "user_analytics", "consumption")


def test_option_errors_name_their_place() -> None:
    base = "accounts: [{name: e, provider: windsurf, api_key: k, "
    assert errors(base + "consumption: {lookback_days: 6}}]") == [
        "accounts[0].consumption.lookback_days: Input should be greater than or equal to 7"
    ]
    assert errors(base + "consumption: {lookback_days: 31}}]") == [
        "accounts[0].consumption.lookback_days: Input should be less than or equal to 30"
    ]
    assert errors(base + "consumption: {timezone: UTC}}]") == [
        "accounts[0].consumption.timezone: unknown key"
    ]
    assert errors(base + "consumption: {min_interval: soon}}]") == [
        'accounts[0].consumption.min_interval: invalid duration "soon" (use e.g. 30s, 5m, 1h30m)'
    ]
    # Values that would be dropped between two polls are refused, saying what to change.
    assert errors(base + "max_staleness: 40m, consumption: {}}]") == [
        "accounts[0].max_staleness: 40m is less than twice consumption.min_interval (30m): the "
        "values would be dropped between two polls; raise max_staleness to at least 1h or lower "
        "consumption.min_interval"
    ]
    assert parse_config(base + "max_staleness: 40m, consumption: {min_interval: 20m}}]", env={})
    assert parse_config(base + "max_staleness: 40m, consumption: {enabled: false}}]", env={})


def test_polled_at_most_every_30_minutes_by_default() -> None:
    """Upstream data is refreshed every 3 hours: the consumption endpoint is never polled
    faster than its min_interval, whatever the account's interval; the others keep it."""
    p = windsurf(interval="1m")
    assert (p.poll_interval("balance"), p.poll_interval("consumption")) == (60, 1800)
    p = windsurf("consumption: {min_interval: 10s}", interval="1m")
    assert p.poll_interval("consumption") == 60
    p = windsurf(interval="2h")
    assert p.poll_interval("consumption") == 7200


def test_changing_min_interval_keeps_the_account() -> None:
    """A pacing knob: a reload that changes it keeps the counter and the history."""
    a, b = account(), account("consumption: {min_interval: 45m}")
    assert a.identity() == b.identity() and a != b
    assert account("consumption: {lookback_days: 14}").identity() != a.identity()


def test_the_request_asks_the_whole_team_for_the_lookback_days() -> None:
    assert cascade_runs_query(NOW, 7) == {
        "start_timestamp": "2026-01-14T00:00:00Z",
        "end_timestamp": "2026-01-20T15:30:00Z",
        "query_requests": [{"cascade_runs": {}}],
    }


# --------------------------------------------------------------------------- parsing


def test_rows_add_up_per_utc_day_in_hundredths() -> None:
    body = runs(
        row("2026-01-20T00:00:00Z", "150"),
        row("2026-01-20T00:00:00Z", 25),  # a number as a number is a number too
        row("2026-01-20T00:00:00Z"),  # left out: 0
        row("2026-01-19", "1000"),  # an RFC 3339 full-date
        row("2026-01-18T08:00:00Z", "1"),  # Pacific midnight as an instant in UTC
        row("2026-01-17T00:00:00-08:00", "2"),  # Pacific midnight with its offset
    )
    r = windsurf().parse_consumption(body, NOW)
    days = {k: v for k, v in r.daily_consumption["team"].items() if v}
    assert days == {"2026-01-17": 0.02, "2026-01-18": 0.01, "2026-01-19": 10, "2026-01-20": 1.75}
    assert r.consumption["team"] == {"1d": 1.75, "7d": 11.78, "30d": 11.78}
    assert len(r.daily_consumption["team"]) == 30


@pytest.mark.parametrize(
    "result",
    [{}, {"cascadeRuns": {}}, {"cascadeRuns": {"cascadeRuns": []}}],
    ids=["empty_result", "empty_runs", "no_rows"],
)
def test_no_rows_is_no_consumption(result: dict[str, Any]) -> None:
    """Protobuf JSON writes an empty message as {} and leaves an empty list out."""
    r = windsurf().parse_consumption({"queryResults": [result]}, NOW)
    assert r.consumption == {"team": {"1d": 0, "7d": 0, "30d": 0}}
    assert set(r.daily_consumption["team"].values()) == {0}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "response should be a JSON object, got array"),
        ({}, "queryResults is missing"),
        ({"queryResults": []}, "queryResults should hold 1 result (one query was sent), got 0"),
        ({"queryResults": [{}, {}]}, "should hold 1 result (one query was sent), got 2"),
        ({"queryResults": {"cascadeRuns": {}}}, "queryResults should be a JSON array"),
        ({"queryResults": [{"cascadeLines": {}}]}, "answers another query (cascadeLines)"),
        ({"queryResults": [{"cascadeRuns": []}]}, "cascadeRuns should be a JSON object"),
        ({"queryResults": [{"cascadeRuns": {"cascadeRuns": None}}]}, "got null"),
        (runs("row"), "cascadeRuns[0] should be a JSON object, got string"),
        (runs({"promptsUsed": "5"}), "cascadeRuns[0].day is missing"),
        (runs(row("")), "cascadeRuns[0].day is not a valid date-time"),
        (runs(row("yesterday")), 'day is not a valid date-time ("yesterday")'),
        (runs(row(20260120)), "cascadeRuns[0].day should be a date-time string"),
    ],
)
def test_an_answer_that_is_not_the_one_result_is_refused(body: Any, fragment: str) -> None:
    with pytest.raises(PollError) as info:
        windsurf().parse_consumption(body, NOW)
    assert info.value.reason is Reason.BAD_RESPONSE
    assert fragment in info.value.message


@pytest.mark.parametrize("wrong", ["lots", "1_000", None, True, {"value": 1}, [1], "-5", -5])
def test_prompts_used_of_another_type_is_refused(wrong: Any) -> None:
    with pytest.raises(PollError) as info:
        windsurf().parse_consumption(runs(row("2026-01-20", "5"), row("2026-01-20", wrong)), NOW)
    assert info.value.reason is Reason.BAD_RESPONSE
    assert info.value.message.startswith("queryResults[0].cascadeRuns.cascadeRuns[1].promptsUsed")


def test_empty_error_is_success_and_an_error_is_not() -> None:
    body = {**runs(row("2026-01-20", "300")), "error": ""}
    assert classify(200, body) is None
    assert windsurf().parse_consumption(body, NOW).consumption["team"]["1d"] == 3
    assert classify(200, {"error": "Insufficient permissions"}) is Reason.AUTH
    assert classify(200, {"error": "start_timestamp must not be after end_timestamp"}) is (
        Reason.BAD_RESPONSE
    )


def test_days_after_tomorrow_are_ignored_and_noted() -> None:
    body = runs(row("2026-01-21", "100"), row("2099-01-01", "999999"))
    r = windsurf().parse_consumption(body, NOW)
    assert r.daily_consumption["team"]["2026-01-21"] == 1  # tomorrow: a clock ahead of ours
    assert "2099-01-01" not in r.daily_consumption["team"]
    assert r.notes == {"consumption": "ignored day buckets dated after tomorrow in UTC: 2099-01-01"}


def test_a_quoted_answer_never_carries_the_key() -> None:
    """The key travels in the body: an answer that echoes it (in a day, say) is quoted in the
    error only after the key is taken out."""
    with pytest.raises(PollError) as info:
        windsurf().parse_consumption(runs(row(f"day {KEY} day")), NOW)
    kept = info.value.redacted(KEY)
    assert find_secrets(kept.message, [KEY]) == []
    assert kept.message.startswith("queryResults[0].cascadeRuns.cascadeRuns[0].day is not")


# --------------------------------------------------------------------------- the team pool


def derived(
    p: Windsurf,
    balance: dict[str, Any] | None,
    analytics: dict[str, Any] | None,
    consumption: dict[str, Any] | None,
) -> Reading:
    """What the store publishes from the endpoints' last good readings."""
    readings = {}
    if balance is not None:
        readings["balance"] = Windsurf.parse_balance(balance)
    if analytics is not None:
        readings["user_analytics"] = Windsurf.parse_analytics(analytics)
    if consumption is not None:
        readings["consumption"] = p.parse_consumption(consumption, NOW)
    store = Store(clock=lambda: NOW.timestamp())
    store.set_accounts([p.account])
    for endpoint, reading in readings.items():
        store.record_success("e", endpoint, reading, 0.1)
    return store.accounts["e"].merged(NOW.timestamp())


BALANCE = {
    "promptCreditsPerSeat": 500,
    "numSeats": 10,
    "addOnCreditsAvailable": 2000,
    "addOnCreditsUsed": 500,
    **JAN,
}
USERS = {"userTableStats": [{"promptCreditsUsed": 1000}, {"promptCreditsUsed": "500"}], **JAN}
WEEK = runs(*(row(f"2026-01-{d}", "7000") for d in range(14, 21)))  # 70 credits a day


def test_team_remaining_is_both_pools_remaining() -> None:
    r = derived(windsurf("prompt_usage: true, consumption: {}"), BALANCE, USERS, WEEK)
    assert r.pools == {
        "prompt": PoolValues(limit=5000, used=1500, remaining=3500),
        "add_on": PoolValues(limit=2000, used=500, remaining=1500),
        "team": PoolValues(limit=7000, used=2000, remaining=5000),
    }
    assert r.consumption == {"team": {"1d": 70, "7d": 490, "30d": 490}}
    assert r.notes == {}


def test_team_without_prompt_usage_has_consumption_and_says_why_no_runway() -> None:
    r = derived(windsurf(), BALANCE, None, WEEK)
    assert r.pools["team"] == PoolValues()
    assert r.consumption["team"]["7d"] == 490
    assert r.notes == {"team": TEAM_NO_PROMPT_USAGE_NOTE}


def test_team_remaining_waits_for_the_prompt_pool_of_the_same_cycle() -> None:
    """Right after a reset the analytics still report the old cycle: neither the prompt pool's
    remaining nor the team's is published until they agree."""
    p = windsurf("prompt_usage: true, consumption: {}")
    r = derived(p, {**BALANCE, **FEB}, USERS, WEEK)
    assert r.pools["prompt"] == PoolValues(limit=5000)
    assert r.pools["team"] == PoolValues()
    assert r.notes["team"] == TEAM_NO_CYCLE_NOTE and "prompt" in r.notes


def test_team_remaining_without_a_consumption_answer_yet() -> None:
    r = derived(windsurf("prompt_usage: true, consumption: {}"), BALANCE, USERS, None)
    assert r.pools["team"] == PoolValues(limit=7000, used=2000, remaining=5000)
    assert r.consumption == {} and r.notes == {}
    # Nothing answered at all: no team pool, no note.
    nothing = derived(windsurf("prompt_usage: true, consumption: {}"), None, None, None)
    assert nothing.pools == {} and nothing.notes == {}


def test_no_team_pool_without_consumption() -> None:
    p = windsurf("prompt_usage: true")
    readings = {
        "balance": Windsurf.parse_balance(BALANCE),
        "user_analytics": Windsurf.parse_analytics(USERS),
    }
    merged = Reading(pools=merge_pools(*(r.pools for r in readings.values())))
    assert set(p.derive(merged, readings).pools) == {"prompt", "add_on"}


# --------------------------------------------------------------------------- the counter


class Clock:
    def __init__(self) -> None:
        self.t = NOW.timestamp()

    def __call__(self) -> float:
        return self.t


def poll(store: Store, p: Windsurf, clock: Clock, *rows: dict[str, Any]) -> float:
    now = datetime.fromtimestamp(clock(), UTC)
    store.record_success("e", "consumption", p.parse_consumption(runs(*rows), now), 0.1)
    return store.accounts["e"].counters["team"].total


def test_counter_no_jump_revisions_once_late_days_count() -> None:
    p, clock = windsurf(), Clock()
    store = Store(clock)
    store.set_accounts([p.account])
    # Start-up: a month of history is the baseline, not a jump.
    history = [row(f"2026-01-{d:02d}", "10000") for d in range(1, 20)]
    today = row("2026-01-20", "500")
    assert poll(store, p, clock, *history, today) == 0
    # The same answer again (a poll within the 3-hour refresh) adds nothing.
    assert poll(store, p, clock, *history, today) == 0
    # Upstream catches up on today (the data lags up to 3 hours): the growth counts, once.
    today = row("2026-01-20", "800")
    assert poll(store, p, clock, *history, today) == 3
    assert poll(store, p, clock, *history, today) == 3
    # A day revised down takes nothing away; the counter never decreases.
    assert poll(store, p, clock, *history, row("2026-01-20", "700")) == 3
    # The next day: a new day counts, and yesterday's late rows count as a revision.
    clock.t += 86400
    tomorrow = row("2026-01-21", "250")
    assert poll(store, p, clock, *history, row("2026-01-20", "900"), tomorrow) == 3 + 1 + 2.5
    # A day left out at first (no rows yet) that appears later counts like any revision.
    clock.t += 86400
    assert poll(store, p, clock, row("2026-01-21", "250")) == 6.5
    assert poll(store, p, clock, row("2026-01-21", "250"), row("2026-01-22", "40")) == 6.9
    # History from before the exporter watched never counts.
    assert poll(store, p, clock, row("2025-12-01", "99900"), row("2026-01-22", "40")) == 6.9


# --------------------------------------------------------------------------- pacing, for real


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator()
    await simulator.start()
    yield simulator
    await simulator.stop()


def sim_config(sim: Simulator, min_interval: str = "30m") -> Any:
    return parse_config(
        f"""
accounts:
  - name: e
    provider: windsurf
    api_key: {KEY}
    base_url: "{sim.base_url("windsurf")}"
    interval: 1m
    rate_limit: unlimited
    consumption: {{min_interval: {min_interval}}}
""",
        env={},
    )


async def settled(store: Store) -> None:
    for _ in range(200):
        if store.readiness.polled and all(
            ep.polls_total for s in store.accounts.values() for ep in s.endpoints.values()
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not polled")


async def test_scheduler_paces_the_consumption_endpoint(sim: Simulator) -> None:
    """One request per poll; the balance every minute, CascadeAnalytics every 30 minutes; a
    reload with a shorter min_interval applies at once and keeps the account's state."""
    today = datetime.now(UTC).date()
    sim.add_account("windsurf", KEY, cascade_days={today.isoformat(): 12.5})
    store = Store()
    async with aiohttp.ClientSession() as session:
        sched = Scheduler(store, HttpClient(session), sim_config(sim))
        await sched.start()
        await settled(store)
        assert sim.calls(KEY, "/CascadeAnalytics") == 1
        assert sim.calls(KEY, "/GetTeamCreditBalance") == 1
        now = asyncio.get_running_loop().time()

        def due(endpoint: str) -> float:
            handle = sched.tasks[("e", endpoint)].handle
            assert handle is not None
            return handle.when() - now

        assert 0.9 * 60 <= due("balance") <= 1.1 * 60
        assert 0.9 * 1800 <= due("consumption") <= 1.1 * 1800
        state = store.accounts["e"]
        assert state.merged(store.clock()).consumption["team"]["1d"] == 12.5

        await sched.apply(sim_config(sim, "5m"))
        assert store.accounts["e"].counters is state.counters  # kept
        assert 0.9 * 300 <= due("consumption") <= 1.1 * 300
        await sched.stop()


async def test_fetch_against_the_simulator(sim: Simulator) -> None:
    """The request the exporter sends is one the API takes (the simulator checks the body),
    and what it reads matches what the simulated team burnt."""
    today = datetime.now(UTC).date()
    days = {(today - timedelta(days=n)).isoformat(): 10.0 + n for n in range(10)}
    sim.add_account("windsurf", KEY, cascade_days=days, cascade_day_form="date")
    url = sim.base_url("windsurf")
    p = windsurf("consumption: {lookback_days: 7}", base_url=f'"{url}"')
    async with aiohttp.ClientSession() as session:
        r = await p.fetch("consumption", account_client(session, secret=KEY))
    assert r.consumption["team"] == {"1d": 10, "7d": sum(10.0 + n for n in range(7))}
    assert r.daily_consumption["team"][(today - timedelta(days=6)).isoformat()] == 16
    assert min(r.daily_consumption["team"]) == (today - timedelta(days=6)).isoformat()
